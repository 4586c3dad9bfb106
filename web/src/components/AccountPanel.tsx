import { useState } from 'preact/hooks';
import type { Chat } from '../chat';
import { deviceName, lastActive } from '../text/device';
import { fullTime } from '../text/time';
import type { LoginSession } from '../types';
import { AvatarPicker } from './AvatarPicker';

/**
 * The account's settings: the profile picture (an avatar upload), change the password (every other session ends, this one goes on
 * with the new tokens the server returns), the sessions (each device signed in, any other one
 * signed out from here) and log out everywhere (every session ends, this one too); DM read
 * receipts on or off.
 */
export function AccountPanel({ chat }: { chat: Chat }) {
  const [oldPassword, setOld] = useState('');
  const [newPassword, setNew] = useState('');
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState<{ text: string; error: boolean } | null>(null);

  const change = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setNote(null);
    try {
      await chat.changePassword(oldPassword, newPassword);
      setOld('');
      setNew('');
      setNote({ text: 'Password changed: your other sessions have ended.', error: false });
    } catch (err) {
      setNote({ text: (err as Error).message, error: true });
    } finally {
      setBusy(false);
    }
  };

  const everywhere = async () => {
    setBusy(true);
    setNote(null);
    try {
      await chat.logoutEverywhere();
    } catch (err) {
      setNote({ text: (err as Error).message, error: true });
      setBusy(false);
    }
  };

  // The sessions, read when the panel opens and again after one is ended.
  const [sessions, setSessions] = useState<LoginSession[] | null>(null);
  const loadSessions = async () => {
    try {
      setSessions((await chat.api.sessions()).sessions);
    } catch (err) {
      setNote({ text: (err as Error).message, error: true });
    }
  };
  const endSession = async (s: LoginSession) => {
    setBusy(true);
    setNote(null);
    try {
      await chat.api.endSession(s.id);
      setNote({ text: `Signed out ${deviceName(s.user_agent)}.`, error: false });
    } catch (err) {
      setNote({ text: (err as Error).message, error: true });
    } finally {
      setBusy(false);
      await loadSessions();
    }
  };

  // Shown as chosen while the server stores it; then (or on a refusal) the stored value.
  const [choice, setChoice] = useState<boolean | null>(null);
  const receipts = choice ?? chat.me?.read_receipts !== false;
  const toggleReceipts = async (on: boolean) => {
    setChoice(on);
    setBusy(true);
    setNote(null);
    try {
      await chat.setReadReceipts(on);
    } catch (err) {
      setNote({ text: (err as Error).message, error: true });
    } finally {
      setChoice(null);
      setBusy(false);
    }
  };

  return (
    <details class="inline-form account" data-testid="account"
             onToggle={(e) => { if (e.currentTarget.open) void loadSessions(); }}>
      <summary>Account</summary>
      <AvatarPicker chat={chat} label="Profile picture" testId="my-avatar"
                    set={async (image) => {
                      await chat.setMyAvatar(image);
                      setNote({ text: 'Profile picture updated.', error: false });
                    }} />
      <label class="check">
        <input type="checkbox" checked={receipts} disabled={busy}
               onChange={(e) => void toggleReceipts(e.currentTarget.checked)} />
        Read receipts in direct messages (off: others do not see when you read, and you do not see when they do)
      </label>
      <form onSubmit={(e) => void change(e)} aria-label="Change password">
        <label>
          Current password
          <input type="password" autoComplete="current-password" required maxLength={128}
                 value={oldPassword} onInput={(e) => setOld(e.currentTarget.value)} />
        </label>
        <label>
          New password
          <input type="password" autoComplete="new-password" required minLength={8} maxLength={128}
                 value={newPassword} onInput={(e) => setNew(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={busy}>Change password</button>
      </form>
      <h3 class="hint">Sessions</h3>
      <ul class="list" aria-label="Sessions" data-testid="sessions">
        {(sessions ?? []).map((s) => (
          <li key={s.id} class="session" data-session={s.id} data-current={s.current ? 'true' : 'false'}>
            <span class="item-name" title={s.user_agent}>{deviceName(s.user_agent)}</span>{' '}
            {s.current && <strong class="hint">this device</strong>}{' '}
            <code class="hint">{s.ip}</code>{' '}
            <span class="hint" title={fullTime(s.last_used_at)}>{lastActive(s.last_used_at)}</span>
            {!s.current && (
              <button type="button" class="small" disabled={busy}
                      aria-label={`Sign out ${deviceName(s.user_agent)} (${s.ip})`}
                      onClick={() => void endSession(s)}>
                Sign out
              </button>
            )}
          </li>
        ))}
        {sessions && sessions.length === 0 && <li class="hint">No sessions.</li>}
      </ul>
      <button type="button" class="small" disabled={busy} onClick={() => void everywhere()}>
        Log out everywhere
      </button>
      {note && (
        <p class={note.error ? 'error' : 'hint'} role={note.error ? 'alert' : 'status'}>{note.text}</p>
      )}
    </details>
  );
}
