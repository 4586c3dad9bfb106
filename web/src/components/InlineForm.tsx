import { useState } from 'preact/hooks';

interface Props {
  summary: string;
  label: string;
  submit: string;
  placeholder?: string;
  /** Runs the action; a thrown error's message is shown under the field. */
  action: (value: string) => Promise<void>;
}

/** A disclosure (<details>) holding a one-field form, e.g. "New space". */
export function InlineForm({ summary, label, submit, placeholder, action }: Props) {
  const [value, setValue] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [open, setOpen] = useState(false);

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
      setError(err instanceof TypeError ? 'The server cannot be reached.' : (err as Error).message);
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
          <input value={value} placeholder={placeholder} required maxLength={64}
                 onInput={(e) => setValue(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={busy}>{submit}</button>
        {error && <p class="error" role="alert">{error}</p>}
      </form>
    </details>
  );
}
