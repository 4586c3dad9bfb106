import { useEffect, useState } from 'preact/hooks';
import type { Chat } from '../chat';
import { lazy, useChat } from '../hooks';
import type { Session, SessionStore } from '../session';
import { AuthScreen } from './AuthScreen';
import { ConversationView } from './ConversationView';
import { Sidebar } from './Sidebar';

const QuickSwitcher = lazy(() => import('./QuickSwitcher').then((m) => m.QuickSwitcher));
const SearchPanel = lazy(() => import('./SearchPanel').then((m) => m.SearchPanel));

function convFromPath(): string | null {
  const m = /^\/c\/((?:channel|dm):\d+)$/.exec(location.pathname);
  return m ? m[1] : null;
}

/** An invitation link (`/invite/<code>`): accepted once the user is logged in. */
function inviteFromPath(): string | null {
  const m = /^\/invite\/([A-Za-z0-9_-]{1,64})$/.exec(location.pathname);
  return m ? m[1] : null;
}

export function App({ session, chat }: { session: SessionStore; chat: Chat }) {
  const [current, setCurrent] = useState<Session | null>(session.get());
  useEffect(() => session.subscribe(setCurrent), [session]);

  const userId = current?.user.id ?? null;
  useEffect(() => {
    if (!current) {
      // An invitation waits for the login; any other path is forgotten.
      if (location.pathname !== '/' && !inviteFromPath()) history.replaceState(null, '', '/');
      return;
    }
    const invite = inviteFromPath();
    chat.start(current.user, convFromPath());
    if (invite) {
      history.replaceState(null, '', '/');
      chat.acceptInvite(invite).catch((e: Error) =>
        chat.setNotice(`This invitation cannot be used: ${e.message}`));
    }
    return () => chat.stop();
  }, [userId]);

  if (!current) return <AuthScreen api={chat.api} onLogin={(s) => session.set(s)} />;
  return <ChatScreen chat={chat} />;
}

/** Whether a key press goes to something the user types into. */
function typing(t: EventTarget | null): boolean {
  const el = t as HTMLElement | null;
  return !!el && (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA' || el.isContentEditable);
}

/**
 * Keyboard: Ctrl/Cmd+K the quick switcher; "/" (outside a text field) searches messages; Alt+Up/Down the previous/next conversation,
 * with Shift the previous/next one with unread messages; Esc marks the open one read.
 */
function ChatScreen({ chat }: { chat: Chat }) {
  useChat(chat);
  const [switcher, setSwitcher] = useState(false);
  const [search, setSearch] = useState(false);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if ((e.ctrlKey || e.metaKey) && !e.altKey && e.key.toLowerCase() === 'k') {
        e.preventDefault();
        setSwitcher((v) => !v);
      } else if (e.key === '/' && !e.ctrlKey && !e.metaKey && !e.altKey && !typing(e.target)) {
        e.preventDefault();
        setSwitcher(false);
        setSearch(true);
      } else if (e.altKey && !e.ctrlKey && !e.metaKey && (e.key === 'ArrowUp' || e.key === 'ArrowDown')) {
        e.preventDefault();
        chat.openNext(e.key === 'ArrowUp' ? -1 : 1, e.shiftKey);
      } else if (e.key === 'Escape' && !e.defaultPrevented && chat.open) {
        chat.markRead(chat.open, undefined, true);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [chat]);
  return (
    <div class={`app${chat.open ? ' has-open' : ''}`}>
      <Sidebar chat={chat} />
      <ConversationView chat={chat} />
      {switcher && <QuickSwitcher chat={chat} close={() => setSwitcher(false)} />}
      {search && <SearchPanel chat={chat} close={() => setSearch(false)} />}
      {chat.notice && (
        <div class="notice" role="alert">
          <span>{chat.notice}</span>
          <button type="button" class="link" onClick={() => chat.setNotice(null)}>
            Dismiss
          </button>
        </div>
      )}
    </div>
  );
}
