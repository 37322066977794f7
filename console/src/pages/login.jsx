import { useState } from 'preact/hooks';
import { api, setCsrf } from '../api.js';

export function Login({ onLogin }) {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const s = await api('POST', '/session', { user, password }, { quiet401: true });
      setCsrf(s.csrfToken);
      setPassword('');
      onLogin(s.user);
    } catch (err) {
      setError(err.status === 401 ? 'Wrong user or password.' : err.message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <form class="form card" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">Kaa console</h1>
        <div class="field">
          <label for="login-user">User</label>
          <input id="login-user" autocomplete="username" value={user} onInput={(e) => setUser(e.target.value)} required />
        </div>
        <div class="field">
          <label for="login-password">Password</label>
          <input
            id="login-password"
            type="password"
            autocomplete="current-password"
            value={password}
            onInput={(e) => setPassword(e.target.value)}
            required
          />
        </div>
        {error && (
          <p class="error" role="alert" id="login-error">
            {error}
          </p>
        )}
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>
            Log in
          </button>
        </div>
      </form>
    </main>
  );
}
