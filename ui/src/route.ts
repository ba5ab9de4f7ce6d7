// The two views, by the URL's hash: the market (default) and the Ops page (#/ops). A hash keeps them one static
// page that the gateway serves as it is, and lets a link or a reload open either.

import { useSyncExternalStore } from "react";

export type View = "market" | "ops";

export function currentView(): View {
  return location.hash.replace(/^#\/?/, "") === "ops" ? "ops" : "market";
}

function subscribe(onChange: () => void): () => void {
  window.addEventListener("hashchange", onChange);
  return () => window.removeEventListener("hashchange", onChange);
}

export function useView(): View {
  return useSyncExternalStore(subscribe, currentView);
}

/** Run `fn` once, as soon as the market view is shown (now, or on a later hash change). */
export function onceMarketShown(fn: () => void): void {
  if (currentView() === "market") {
    fn();
    return;
  }
  const listener = (): void => {
    if (currentView() !== "market") return;
    window.removeEventListener("hashchange", listener);
    fn();
  };
  window.addEventListener("hashchange", listener);
}
