import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';

const NETWORK_ERROR = 'The server cannot be reached.';

interface Props {
  summary: string;
  label: string;
  submit: string;
  placeholder?: string;
  /** The connection is up: an error saying the server cannot be reached is gone. */
  online: boolean;
  /** Runs the action; a thrown error's message is shown under the field. */
  action: (value: string) => Promise<void>;
  /** Longest value (default 64: a name). */
  maxLength?: number;
  /** More controls of the form, shown before the submit button (e.g. a checkbox). */
  children?: ComponentChildren;
}

/** A disclosure (<details>) holding a one-field form, e.g. "New space". */
export function InlineForm({ summary, label, submit, placeholder, online, action, maxLength = 64, children }: Props) {
  const [value, setValue] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [open, setOpen] = useState(false);

  // An error lasts as long as its cause: the network is back, or the user edits the field.
  useEffect(() => {
    if (online && error === NETWORK_ERROR) setError(null);
  }, [online, error]);

  const onSubmit = async (e: Event) => {
    e.preventDefault();
    const v = value.trim();
    if (!v) return;
    setBusy(true);
    setError(null);
    try {
      await action(v);
      setValue('');
      setOpen(false);
    } catch (err) {
      setError(err instanceof TypeError ? NETWORK_ERROR : (err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <details class="inline-form" open={open} onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary>{summary}</summary>
      <form onSubmit={onSubmit}>
        <label>
          {label}
          <input value={value} placeholder={placeholder} required maxLength={maxLength}
                 aria-invalid={error ? true : undefined}
                 onInput={(e) => {
                   setValue(e.currentTarget.value);
                   if (error && error !== NETWORK_ERROR) setError(null);
                 }} />
        </label>
        {children}
        <button type="submit" disabled={busy}>{submit}</button>
        {error && <p class="error" role="alert">{error}</p>}
      </form>
    </details>
  );
}
