import { useState, type FormEvent } from "react";
import { signIn, signOut } from "../account";
import { useAccount } from "../store";

export function SignIn() {
  const creds = useAccount((s) => s.creds);
  const busy = useAccount((s) => s.signingIn);
  const error = useAccount((s) => s.signInError);
  const [key, setKey] = useState("");
  const [secret, setSecret] = useState("");

  if (creds) {
    return (
      <section className="panel signin" data-testid="signed-in">
        <span className="dim">API key</span> <code>{creds.apiKey.slice(0, 10)}…</code>
        <button onClick={signOut} data-testid="sign-out">
          Sign out
        </button>
      </section>
    );
  }
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void signIn(key, secret);
  };
  return (
    <section className="panel signin">
      <form onSubmit={submit} data-testid="sign-in">
        <input placeholder="API key" value={key} onChange={(e) => setKey(e.target.value)} data-testid="api-key" autoComplete="off" />
        <input
          placeholder="Secret (kept in this tab, never sent)"
          type="password"
          value={secret}
          onChange={(e) => setSecret(e.target.value)}
          data-testid="api-secret"
          autoComplete="off"
        />
        <button type="submit" disabled={busy || !key || !secret} data-testid="sign-in-button">
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
      {error && (
        <div className="error" role="alert" data-testid="sign-in-error">
          Sign-in refused: {error}
        </div>
      )}
    </section>
  );
}
