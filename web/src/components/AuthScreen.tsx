import { useState } from 'preact/hooks';
import type { Api } from '../api';
import type { Session } from '../session';

type Mode = 'login' | 'register';

export function AuthScreen({ api, onLogin }: { api: Api; onLogin: (s: Session) => void }) {
  const [mode, setMode] = useState<Mode>('login');
  const [name, setName] = useState('');
  const [phone, setPhone] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (mode === 'register') await api.register(name.trim(), phone.trim(), password);
      onLogin(await api.login(phone.trim(), password));
    } catch (err) {
      setError(err instanceof TypeError ? 'The server cannot be reached.' : (err as Error).message);
      setBusy(false);
    }
  };

  return (
    <main class="auth">
      <h1 class="brand">imd</h1>
      <div class="tabs" role="group" aria-label="Account">
        <button type="button" aria-pressed={mode === 'login'} onClick={() => setMode('login')}>
          Log in
        </button>
        <button type="button" aria-pressed={mode === 'register'} onClick={() => setMode('register')}>
          Register
        </button>
      </div>
      <form onSubmit={submit} aria-label={mode === 'login' ? 'Log in' : 'Register'}>
        {mode === 'register' && (
          <label>
            Name
            <input name="name" autoComplete="username" required maxLength={64}
                   value={name} onInput={(e) => setName(e.currentTarget.value)} />
          </label>
        )}
        <label>
          Phone
          <input name="phone" type="tel" autoComplete="tel" required placeholder="+15550001"
                 value={phone} onInput={(e) => setPhone(e.currentTarget.value)} />
        </label>
        <label>
          Password
          <input name="password" type="password" required minLength={mode === 'register' ? 8 : 1}
                 autoComplete={mode === 'login' ? 'current-password' : 'new-password'}
                 value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit" class="primary" disabled={busy}>
          {mode === 'login' ? 'Log in' : 'Create account'}
        </button>
      </form>
    </main>
  );
}
