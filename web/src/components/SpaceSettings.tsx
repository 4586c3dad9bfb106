import { useState } from 'preact/hooks';
import type { Chat } from '../chat';
import { INVITE_EXPIRIES, describeInvite, inviteRequest } from '../model/moderation';
import type { Invite, Member, Space } from '../types';

/**
 * The space's settings, for its owner and admins (the Sidebar shows it to them only; the
 * server decides): rename it; its usable invitations (expiry, uses left) with Revoke, and a new
 * one with a chosen expiry and number of uses; its bans with Unban. The owner also lists the
 * space for everyone and hands it over (after a confirmation naming the new owner).
 */
export function SpaceSettings({ chat, space, owner }: { chat: Chat; space: Space; owner: boolean }) {
  const [name, setName] = useState<string | null>(null);
  const [invites, setInvites] = useState<Invite[] | null>(null);
  const [bans, setBans] = useState<Member[] | null>(null);
  const [uses, setUses] = useState('100');
  const [expiry, setExpiry] = useState(604_800);
  const [made, setMade] = useState<string | null>(null);
  const [members, setMembers] = useState<Member[] | null>(null);
  const [heir, setHeir] = useState('');
  const [confirming, setConfirming] = useState(false);
  const [note, setNote] = useState<{ text: string; error: boolean } | null>(null);
  const fail = (e: unknown) => setNote({ text: (e as Error).message, error: true });
  const ok = (text: string) => setNote({ text, error: false });
  const id = space.id;

  const load = () => {
    void chat.api.invites(id).then((r) => setInvites(r.invites), fail);
    void chat.api.bans(id).then((r) => setBans(r.bans), fail);
    if (owner) void chat.members(id).then((m) => setMembers(m.filter((x) => x.user_id !== chat.me?.id)), fail);
  };
  const act = (p: Promise<unknown>, done: string) => {
    setNote(null);
    p.then(() => { ok(done); load(); }, fail);
  };

  const rename = (e: Event) => {
    e.preventDefault();
    if (name === null) return;
    act(chat.renameSpace(id, name).then(() => setName(null)), 'Space renamed.');
  };
  const invite = (e: Event) => {
    e.preventDefault();
    const body = inviteRequest(uses, expiry);
    if ('error' in body) return fail(new Error(body.error));
    act(chat.api.createInvite(id, body).then((inv) => setMade(`${location.origin}/invite/${inv.code}`)), 'Invitation made.');
  };
  const heirName = members?.find((m) => m.user_id === heir)?.name ?? '';

  return (
    <details class="inline-form space-settings" data-testid="space-settings"
             onToggle={(e) => { if (e.currentTarget.open) { setNote(null); load(); } }}>
      <summary>Space settings</summary>
      <form onSubmit={rename} aria-label="Rename the space">
        <label>
          Space name
          <input required maxLength={64} data-testid="space-name-input" value={name ?? space.name}
                 onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <button type="submit" class="small" disabled={name === null}>Rename</button>
      </form>
      {owner && (
        <label class="check">
          <input type="checkbox" checked={!!space.discoverable} data-testid="discoverable"
                 onChange={(e) => act(chat.setDiscoverable(id, e.currentTarget.checked), 'Saved.')} />
          Listed: anyone may join
        </label>
      )}

      <fieldset class="settings-group">
        <legend>Invitations</legend>
        <ul class="list" aria-label="Invitations">
          {(invites ?? []).map((inv) => (
            <li key={inv.code} class="member" data-invite={inv.code}>
              <span class="hint"><code>…{inv.code.slice(-6)}</code> {describeInvite(inv, Date.now())}</span>
              <button type="button" class="small" aria-label={`Revoke the invitation ending ${inv.code.slice(-6)}`}
                      onClick={() => act(chat.api.revokeInvite(id, inv.code), 'Invitation revoked.')}>
                Revoke
              </button>
            </li>
          ))}
          {invites && invites.length === 0 && <li class="hint">No usable invitations.</li>}
        </ul>
        <form onSubmit={invite} aria-label="New invitation" class="row">
          <label>
            Uses
            <input inputMode="numeric" required maxLength={5} size={5} data-testid="invite-uses" value={uses}
                   onInput={(e) => setUses(e.currentTarget.value)} />
          </label>
          <label>
            Expires after
            <select value={expiry} data-testid="invite-expiry" onChange={(e) => setExpiry(Number(e.currentTarget.value))}>
              {INVITE_EXPIRIES.map((x) => <option key={x.seconds} value={x.seconds}>{x.label}</option>)}
            </select>
          </label>
          <button type="submit" class="small">Make invitation</button>
        </form>
        {made && (
          <input class="invite-link" readOnly value={made} aria-label="New invitation link" data-testid="made-invite"
                 onFocus={(e) => e.currentTarget.select()} />
        )}
      </fieldset>

      <fieldset class="settings-group">
        <legend>Banned</legend>
        <ul class="list" aria-label="Banned people">
          {(bans ?? []).map((b) => (
            <li key={b.user_id} class="member" data-ban={b.user_id}>
              <span class="item-name">{b.name}</span>
              <button type="button" class="small" aria-label={`Unban ${b.name}`}
                      onClick={() => act(chat.api.unban(id, b.user_id), `${b.name} unbanned.`)}>
                Unban
              </button>
            </li>
          ))}
          {bans && bans.length === 0 && <li class="hint">Nobody is banned.</li>}
        </ul>
      </fieldset>

      {owner && members && (
        <fieldset class="settings-group">
          <legend>Transfer ownership</legend>
          <label>
            New owner
            <select value={heir} data-testid="heir" onChange={(e) => { setHeir(e.currentTarget.value); setConfirming(false); }}>
              <option value="">Pick a member</option>
              {members.map((m) => <option key={m.user_id} value={m.user_id}>{m.name}</option>)}
            </select>
          </label>
          {!confirming ? (
            <button type="button" class="small" disabled={!heir} onClick={() => setConfirming(true)}>Transfer…</button>
          ) : (
            <span role="group" aria-label="Confirm the transfer">
              <span>Make {heirName} the owner of {space.name}? You become an admin.</span>{' '}
              <button type="button" class="small danger" data-testid="confirm-transfer"
                      onClick={() => { setConfirming(false); act(chat.transferSpace(id, heir), `${heirName} owns ${space.name} now.`); }}>
                Transfer to {heirName}
              </button>
              <button type="button" class="small" onClick={() => setConfirming(false)}>Cancel</button>
            </span>
          )}
        </fieldset>
      )}
      {note && <p class={note.error ? 'error' : 'hint'} role={note.error ? 'alert' : 'status'}>{note.text}</p>}
    </details>
  );
}
