"""Client-facing gateways (REST/WebSocket, FIX). Built by later issues; they submit commands through client/."""
