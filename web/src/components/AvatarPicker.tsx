import { useState } from 'preact/hooks';
import type { Chat } from '../chat';

/**
 * Picks an image and hands it to `set` (an avatar upload: the server makes the square); a
 * refusal is shown as a notice.
 */
export function AvatarPicker({ chat, label, testId, set }: {
  chat: Chat;
  label: string;
  testId: string;
  set: (image: File) => Promise<void>;
}) {
  const [busy, setBusy] = useState(false);
  const pick = (e: Event) => {
    const input = e.currentTarget as HTMLInputElement;
    const image = input.files?.[0];
    input.value = '';
    if (!image) return;
    setBusy(true);
    set(image)
      .catch((err) => chat.setNotice((err as Error).message))
      .finally(() => setBusy(false));
  };
  return (
    <label class="avatar-picker">
      {label}
      <input type="file" accept="image/png,image/jpeg,image/gif,image/webp" disabled={busy}
             data-testid={testId} onChange={pick} />
    </label>
  );
}
