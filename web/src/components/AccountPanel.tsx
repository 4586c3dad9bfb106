import { useState } from 'preact/hooks';
import { askNotifications, notificationPermission } from '../attention';
import type { Chat } from '../chat';
import type { Theme } from '../theme';
import { deviceName, lastActive } from '../text/device';
import { fullTime } from '../text/time';
import type { LoginSession } from '../types';
import { AvatarPicker } from './AvatarPicker';

/**
 * The account's settings: the display name and the profile picture (an avatar upload); on this
 * device the theme, desktop notifications and the sound for DMs and mentions; change the
 * password (every other session ends, this one goes on with the new tokens the server
 * returns); the sessions (each device signed in, any other one signed out from here) and log
 * out everywhere (every session ends, this one too); DM read receipts on or off; the people
 * this user blocked, with Unblock.
 */
export function AccountPanel({ chat, theme, setTheme }: { chat: Chat; theme: Theme; setTheme: (t: Theme) => void }) {
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

  const [name, setName] = useState<string | null>(null); // null: the stored name, unedited
  const saveName = async (e: Event) => {
    e.preventDefault();
    if (name === null) return;
    setBusy(true);
    setNote(null);
    try {
      await chat.setName(name);
      setName(null);
      setNote({ text: 'Name changed.', error: false });
    } catch (err) {
      setNote({ text: (err as Error).message, error: true });
    } finally {
      setBusy(false);
    }
  };

  const [permission, setPermission] = useState(notificationPermission);
  const setDesktop = (on: boolean) => {
    chat.setAlert('desktop', on);
    if (on && permission === 'default') void askNotifications().then(setPermission);
  };

  return (
    <details class="inline-form account" data-testid="account"
             onToggle={(e) => { if (e.currentTarget.open) void loadSessions(); }}>
      <summary>Account</summary>
      <form onSubmit={(e) => void saveName(e)} aria-label="Display name">
        <label>
          Display name
          <input required maxLength={64} autoComplete="nickname" data-testid="my-name"
                 value={name ?? chat.me?.name ?? ''} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <button type="submit" class="small" disabled={busy || name === null}>Save name</button>
      </form>
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
      <fieldset class="settings-group">
        <legend>Notifications on this device</legend>
        <label class="check">
          <input type="checkbox" checked={chat.prefs.desktop} data-testid="pref-desktop"
                 onChange={(e) => setDesktop(e.currentTarget.checked)} />
          Desktop notifications for direct messages and mentions
        </label>
        {chat.prefs.desktop && permission === 'denied' && (
          <p class="hint">The browser blocks notifications for this site: allow them in its site settings.</p>
        )}
        <label class="check">
          <input type="checkbox" checked={chat.prefs.sound} data-testid="pref-sound"
                 onChange={(e) => chat.setAlert('sound', e.currentTarget.checked)} />
          Sound for direct messages and mentions
        </label>
      </fieldset>
      <label>
        Theme
        <select value={theme} data-testid="theme-select"
                onChange={(e) => setTheme(e.currentTarget.value as Theme)}>
          <option value="system">System</option>
          <option value="light">Light</option>
          <option value="dark">Dark</option>
        </select>
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
      <fieldset class="settings-group">
        <legend>Blocked people</legend>
        <ul class="list" aria-label="Blocked people" data-testid="blocked">
          {chat.blocks.all().map((b) => (
            <li key={b.user_id} class="member" data-blocked-user={b.user_id}>
              <span class="item-name">{b.name}</span>
              <button type="button" class="small" aria-label={`Unblock ${b.name}`}
                      onClick={() => void chat.setBlocked(b.user_id, false).then(
                        () => setNote({ text: `${b.name} unblocked.`, error: false }),
                        (err: Error) => setNote({ text: err.message, error: true }))}>
                Unblock
              </button>
            </li>
          ))}
          {chat.blocks.all().length === 0 && <li class="hint">Nobody. Block someone from their direct message or the member list.</li>}
        </ul>
      </fieldset>
      {note && (
        <p class={note.error ? 'error' : 'hint'} role={note.error ? 'alert' : 'status'}>{note.text}</p>
      )}
    </details>
  );
}
