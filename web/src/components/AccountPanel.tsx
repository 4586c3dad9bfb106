import { useState } from 'preact/hooks';
import type { Chat } from '../chat';
import { AvatarPicker } from './AvatarPicker';

/**
 * The account's settings: the profile picture (an avatar upload), change the password (every other session ends, this one goes on
 * with the new tokens the server returns) and log out everywhere (every session ends, this
 * one too); DM read receipts on or off.
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
    <details class="inline-form account" data-testid="account">
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
      <button type="button" class="small" disabled={busy} onClick={() => void everywhere()}>
        Log out everywhere
      </button>
      {note && (
        <p class={note.error ? 'error' : 'hint'} role={note.error ? 'alert' : 'status'}>{note.text}</p>
      )}
    </details>
  );
}
