import { useEffect, useState } from 'preact/hooks';
import { askNotifications, notificationPermission } from '../attention';
import { mentionCount, unread, type Chat, type Conv } from '../chat';
import { nextTheme, theme, setTheme, type Theme } from '../theme';
import type { ConnState } from '../socket';
import type { Member, Space, User } from '../types';
import { AvatarPicker } from './AvatarPicker';
import { Badge, MentionBadge } from './Badge';
import { ListAvatar } from './ListAvatar';
import type * as DirectoryPanels from './DirectoryPanels';
import { InlineForm } from './InlineForm';
import { BlockButton } from './BlockButton';
import { manages, mayRemove } from '../model/moderation';
import { lazy } from '../hooks';

const AccountPanel = lazy(() => import('./AccountPanel').then((m) => m.AccountPanel));
const AdminPanel = lazy(() => import('./AdminPanel').then((m) => m.AdminPanel));
const SpaceSettings = lazy(() => import('./SpaceSettings').then((m) => m.SpaceSettings));

const CONN_TEXT: Record<ConnState, string> = {
  connecting: 'Connecting…',
  online: 'Online',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
};

const THEME_TEXT: Record<Theme, string> = { system: 'Theme: system', light: 'Theme: light', dark: 'Theme: dark' };

/** A user's presence as a coloured dot, its status as the accessible name. */
function PresenceDot({ chat, user }: { chat: Chat; user: string }) {
  const status = chat.presenceOf(user);
  return <span class={`presence presence-${status}`} role="img" aria-label={status} title={status} data-presence={status} />;
}

// The directory panels are a chunk of their own, fetched when one is first opened.
let panels: Promise<typeof DirectoryPanels> | null = null;

/** The People or Browse panel, once its chunk is loaded. */
function LazyPanel({ chat, which, close }: { chat: Chat; which: 'people' | 'browse'; close: () => void }) {
  const [mod, setMod] = useState<typeof DirectoryPanels | null>(null);
  useEffect(() => {
    let live = true;
    (panels ??= import('./DirectoryPanels')).then(
      (m) => live && setMod(m),
      (e: Error) => {
        panels = null;
        chat.setNotice(`This panel cannot be loaded: ${e.message}`);
        close();
      },
    );
    return () => { live = false; };
  }, []);
  if (!mod) return null;
  const Panel = which === 'people' ? mod.PeoplePanel : mod.BrowsePanel;
  return <Panel chat={chat} close={close} />;
}

export function Sidebar({ chat }: { chat: Chat }) {
  const space = chat.spaces.find((s) => s.id === chat.selectedSpace);
  const channels = space ? chat.channels[space.id] : undefined;
  const online = chat.conn === 'online';
  const [shownTheme, setShownTheme] = useState(theme);
  const [permission, setPermission] = useState(notificationPermission); // asking the browser is slow: once
  const [panel, setPanel] = useState<'people' | 'browse' | null>(null);

  return (
    <nav class="sidebar" aria-label="Conversations">
      <header class="me">
        <span class="brand">imd</span>
        <span class={`conn conn-${chat.conn}`} role="status" data-testid="conn">
          {CONN_TEXT[chat.conn]}
        </span>
        <span class="me-name" title={chat.me ? `${chat.me.name} (your id: ${chat.me.id})` : ''}>{chat.me?.name}</span>
        <button type="button" class="link" onClick={() => void chat.logout()}>Log out</button>
      </header>
      <div class="prefs">
        <button type="button" class="small" data-testid="theme"
                onClick={() => setShownTheme(setTheme(nextTheme(shownTheme)))}>
          {THEME_TEXT[shownTheme]}
        </button>
        {permission === 'default' && chat.prefs.desktop && (
          <button type="button" class="small"
                  onClick={() => void askNotifications().then(setPermission)}>
            Enable notifications
          </button>
        )}
      </div>
      <AccountPanel chat={chat} theme={shownTheme} setTheme={(t) => setShownTheme(setTheme(t))} />
      <AdminPanel chat={chat} />
      <div class="prefs">
        <button type="button" class="small" data-testid="open-people" onClick={() => setPanel('people')}>People</button>
        <button type="button" class="small" data-testid="open-browse" onClick={() => setPanel('browse')}>
          Browse channels
        </button>
      </div>
      {panel && <LazyPanel chat={chat} which={panel} close={() => setPanel(null)} />}

      <section aria-labelledby="spaces-h">
        <h2 id="spaces-h">Spaces</h2>
        <ul class="list">
          {chat.spaces.map((s) => (
            <li key={s.id}>
              <button type="button" class="item" data-space={s.id}
                      aria-pressed={s.id === chat.selectedSpace}
                      onClick={() => chat.selectSpace(s.id)}>
                <ListAvatar chat={chat} field={s.avatar} initialsOf={s} />
                <span class="item-name">{s.name}</span>
                {chat.spaceMuted(s.id) && <span class="muted-mark" role="img" aria-label="muted" title="Space muted">🔕</span>}
                <MentionBadge count={chat.spaceMentions(s.id)} muted={chat.spaceMuted(s.id)} />
                <Badge count={chat.spaceUnread(s.id)} muted={chat.spaceMuted(s.id)} />
              </button>
            </li>
          ))}
        </ul>
        {chat.spaces.length === 0 && <p class="hint">No spaces yet: create one for your team, or join one.</p>}
        <InlineForm summary="New space" label="Space name" submit="Create" online={online}
                    action={(name) => chat.createSpace(name)} />
        <Discover chat={chat} />
        <InlineForm summary="Join a space" label="Invite link" submit="Join" online={online}
                    maxLength={512} placeholder="https://…/invite/…"
                    action={(text) => chat.joinSpace(text)} />
        <p class="hint">Paste the invite link a teammate sent you.</p>
      </section>

      {space && (
        <section aria-labelledby="channels-h">
          <h2 id="channels-h">
            Channels in <span class="space-name">{space.name}</span>
          </h2>
          <SpaceAbout chat={chat} space={space} />
          <button type="button" class="small" data-testid="space-mute" aria-pressed={chat.spaceMuted(space.id)}
                  title="A muted space: no sound, notification or title count for its channels; unread shown in grey"
                  onClick={() => chat.setSpaceMuted(space.id, !chat.spaceMuted(space.id))}>
            {chat.spaceMuted(space.id) ? 'Unmute space' : 'Mute space'}
          </button>
          {space.owner_id === chat.me?.id && (
            <AvatarPicker chat={chat} label="Space picture" testId="space-avatar"
                          set={(image) => chat.setSpaceAvatar(space.id, image)} />
          )}
          <ul class="list">
            {(channels ?? []).map((ch) => {
              const c = chat.convs.get(`channel:${ch.id}`);
              const label = `${ch.private ? '🔒' : '#'} ${ch.name}${ch.archived ? ' (archived)' : ''}`;
              if (c?.joined) return <ConvItem key={ch.id} chat={chat} conv={c} label={label} private={ch.private} />;
              return (
                <li key={ch.id} class="unjoined">
                  <span class="item-name">{label}</span>
                  <button type="button" class="small" aria-label={`Join channel ${ch.name}`}
                          onClick={() => chat.joinChannel(ch.id).catch((e) => chat.setNotice(e.message))}>
                    Join
                  </button>
                </li>
              );
            })}
            {channels && channels.length === 0 && <li class="hint">No channels yet.</li>}
          </ul>
          <NewChannel chat={chat} spaceId={space.id} online={online} />
          {(() => {
            const openId = chat.open?.startsWith('channel:') ? chat.open.slice('channel:'.length) : null;
            const ch = openId ? (channels ?? []).find((c) => c.id === openId && c.private) : undefined;
            return ch ? (
              <InlineForm summary={`Add to 🔒 ${ch.name}`} label="Member name or id" submit="Add" online={online}
                          action={(who) => chat.addToChannel(space.id, ch.id, who)} />
            ) : null;
          })()}
          <Members chat={chat} spaceId={space.id} />
        </section>
      )}

      <DmPresence chat={chat} />
      <section aria-labelledby="dms-h">
        <h2 id="dms-h">Direct messages</h2>
        <ul class="list">
          {chat.dms().map((c) => (
            <ConvItem key={c.key} chat={chat} conv={c} label={chat.convTitle(c)} />
          ))}
        </ul>
        {chat.dms().length === 0 && <p class="hint">No direct messages yet: find someone by name.</p>}
        <DmFinder chat={chat} />
      </section>
    </nav>
  );
}

const ROLE_TEXT: Record<string, string> = { owner: 'You own this space', admin: 'You are an admin here', member: 'You are a member' };

/** What the selected space is and how people come in; "Invite people" for its owner and admins. */
function SpaceAbout({ chat, space }: { chat: Chat; space: Space }) {
  const role = chat.spaceRole(space.id);
  return (
    <>
      <p class="hint" data-testid="space-about">
        {role ? `${ROLE_TEXT[role] ?? ROLE_TEXT.member} · ` : ''}
        {space.discoverable ? 'listed: anyone may join' : 'people join by invite link'}
      </p>
      {manages(role) && <InviteLink chat={chat} spaceId={space.id} />}
      {manages(role) && <SpaceSettings key={space.id} chat={chat} space={space} owner={role === 'owner'} />}
    </>
  );
}

/** Watches the presence of the DM list's peers (nothing rendered). */
function DmPresence({ chat }: { chat: Chat }) {
  const peers = chat.dms().map((c) => c.peerOrChannel);
  const key = peers.join(',');
  useEffect(() => chat.showPresence('dms', peers), [key]);
  return null;
}

function ConvItem({ chat, conv, label, private: isPrivate }: { chat: Chat; conv: Conv; label: string; private?: boolean }) {
  const muted = chat.isMuted(conv);
  const avatar =
    conv.kind === 'dm'
      ? chat.userAvatar(conv.peerOrChannel)
      : chat.channels[conv.spaceId ?? '']?.find((c) => c.id === conv.peerOrChannel)?.avatar;
  return (
    <li>
      <button type="button" class="item" data-conv={conv.key} data-private={isPrivate ? 'true' : undefined}
              title={isPrivate ? 'Private channel: its members only' : undefined}
              aria-current={chat.open === conv.key ? 'page' : undefined}
              onClick={() => chat.openConv(conv.key)}>
        <ListAvatar chat={chat} field={avatar} />
        {conv.kind === 'dm' && <PresenceDot chat={chat} user={conv.peerOrChannel} />}
        <span class="item-name">{label}</span>
        {muted && <span class="muted-mark" role="img" aria-label="muted" title="Muted">🔕</span>}
        <MentionBadge count={mentionCount(conv)} muted={muted} />
        <Badge count={unread(conv)} muted={muted} />
      </button>
    </li>
  );
}

/** "New message": find a user by name or id, pick one when several share the name. */
function DmFinder({ chat }: { chat: Chat }) {
  const [choices, setChoices] = useState<User[]>([]);
  return (
    <>
      <InlineForm summary="New message" label="User name or id" submit="Find" online={chat.conn === 'online'}
                  action={async (q) => {
                    setChoices([]);
                    const users = await chat.findUsers(q);
                    if (users.length === 0) throw new Error(`Nobody found for “${q}”.`);
                    // One match, or one whose whole name is the query: open it.
                    const exact = users.filter((u) => u.name.toLowerCase() === q.toLowerCase());
                    if (users.length === 1 || exact.length === 1) chat.openDm(exact.length === 1 ? exact[0] : users[0]);
                    else {
                      setChoices(users);
                      throw new Error('Several people match: pick one below.');
                    }
                  }} />
      {choices.length > 0 && (
        <ul class="list">
          {choices.map((u) => (
            <li key={u.id}>
              <button type="button" class="item" onClick={() => { setChoices([]); chat.openDm(u); }}>
                <span class="item-name">{u.name}</span> <code class="hint">{u.id}</code>
              </button>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

/** "New channel", public or (checked) private. */
function NewChannel({ chat, spaceId, online }: { chat: Chat; spaceId: string; online: boolean }) {
  const [isPrivate, setPrivate] = useState(false);
  return (
    <InlineForm summary="New channel" label="Channel name" submit="Create" online={online}
                action={async (name) => {
                  await chat.createChannel(spaceId, name, isPrivate);
                  setPrivate(false);
                }}>
      <label class="check">
        <input type="checkbox" checked={isPrivate} data-testid="channel-private"
               onChange={(e) => setPrivate(e.currentTarget.checked)} />
        Private (members only)
      </label>
    </InlineForm>
  );
}

/** Makes an invitation link to the space (admins and the owner), to copy and share. */
function InviteLink({ chat, spaceId }: { chat: Chat; spaceId: string }) {
  const [link, setLink] = useState<{ space: string; url: string } | null>(null);
  const [copied, setCopied] = useState(false);
  const shown = link?.space === spaceId ? link.url : null;
  return (
    <div class="invite">
      <button type="button" class="small" data-testid="invite"
              onClick={() => {
                setCopied(false);
                chat.inviteLink(spaceId).then((url) => setLink({ space: spaceId, url }),
                                              (e) => chat.setNotice((e as Error).message));
              }}>
        Invite people
      </button>
      {shown && (
        <>
          <input class="invite-link" readOnly value={shown} aria-label="Invite link" data-testid="invite-link"
                 onFocus={(e) => e.currentTarget.select()} />
          <button type="button" class="small"
                  onClick={() => void navigator.clipboard?.writeText(shown).then(() => setCopied(true), () => undefined)}>
            {copied ? 'Copied' : 'Copy'}
          </button>
        </>
      )}
    </div>
  );
}

/** The space's members with their roles; remove and ban where this user's role allows. */
function Members({ chat, spaceId }: { chat: Chat; spaceId: string }) {
  const [list, setList] = useState<{ space: string; members: Member[] } | null>(null);
  const load = () => chat.members(spaceId).then((members) => setList({ space: spaceId, members }),
                                                (e) => chat.setNotice((e as Error).message));
  const members = list?.space === spaceId ? list.members : null;
  const mine = members?.find((m) => m.user_id === chat.me?.id)?.role ?? 'member';
  const act = (m: Member, ban: boolean) =>
    chat.removeMember(spaceId, m.user_id, ban).then(load, (e) => chat.setNotice((e as Error).message));
  const [open, setOpen] = useState(false);
  // Watch the members while the list is open, nobody once it closes.
  const shown = open && members ? members.map((m) => m.user_id) : [];
  const key = shown.join(',');
  useEffect(() => chat.showPresence('members', shown), [key]);
  useEffect(() => () => chat.showPresence('members', []), []);
  return (
    <details class="members" onToggle={(e) => {
      setOpen(e.currentTarget.open);
      if (e.currentTarget.open) void load();
    }}>
      <summary>Members</summary>
      <ul class="list">
        {(members ?? []).map((m) => {
          const role = m.role ?? 'member';
          const may = mayRemove(mine, role, m.user_id === chat.me?.id);
          return (
            <li key={m.user_id} class="member" data-member={m.user_id}>
              <PresenceDot chat={chat} user={m.user_id} />
              <span class="item-name">{m.name}</span> <span class={`role role-${role}`}>{role}</span>
              {mine === 'owner' && role !== 'owner' && (
                <button type="button" class="small" aria-label={`Make ${m.name} ${role === 'admin' ? 'a member' : 'an admin'}`}
                        onClick={() => void chat.setRole(spaceId, m.user_id, role === 'admin' ? 'member' : 'admin')
                          .then(load, (e) => chat.setNotice((e as Error).message))}>
                  {role === 'admin' ? 'Make member' : 'Make admin'}
                </button>
              )}
              {may && (
                <>
                  <button type="button" class="small" aria-label={`Remove ${m.name}`} onClick={() => void act(m, false)}>
                    Remove
                  </button>
                  <button type="button" class="small" aria-label={`Ban ${m.name}`} onClick={() => void act(m, true)}>
                    Ban
                  </button>
                </>
              )}
              <BlockButton chat={chat} user={m.user_id} name={m.name} />
            </li>
          );
        })}
      </ul>
    </details>
  );
}

/** The spaces anyone may join (their owners listed them), with a Join button each. */
function Discover({ chat }: { chat: Chat }) {
  const [list, setList] = useState<Space[] | null>(null);
  const load = () => chat.discoverable().then((p) => setList(p.spaces), (e) => chat.setNotice((e as Error).message));
  return (
    <details class="discover" onToggle={(e) => { if (e.currentTarget.open) void load(); }}>
      <summary>Discover spaces</summary>
      <ul class="list">
        {(list ?? []).map((s) => (
          <li key={s.id} class="unjoined">
            <span class="item-name">{s.name}</span>
            <button type="button" class="small" aria-label={`Join space ${s.name}`}
                    onClick={() => void chat.joinSpace(s.id).then(load, (e) => chat.setNotice((e as Error).message))}>
              Join
            </button>
          </li>
        ))}
        {list && list.length === 0 && <li class="hint">None to join.</li>}
      </ul>
    </details>
  );
}
