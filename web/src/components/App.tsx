import { useEffect, useState } from 'preact/hooks';
import type { Chat } from '../chat';
import { useChat } from '../hooks';
import type { Session, SessionStore } from '../session';
import { AuthScreen } from './AuthScreen';
import { ConversationView } from './ConversationView';
import { Sidebar } from './Sidebar';

function convFromPath(): string | null {
  const m = /^\/c\/((?:channel|dm):\d+)$/.exec(location.pathname);
  return m ? m[1] : null;
}

export function App({ session, chat }: { session: SessionStore; chat: Chat }) {
  const [current, setCurrent] = useState<Session | null>(session.get());
  useEffect(() => session.subscribe(setCurrent), [session]);

  const userId = current?.user.id ?? null;
  useEffect(() => {
    if (!current) {
      if (location.pathname !== '/') history.replaceState(null, '', '/');
      return;
    }
    chat.start(current.user, convFromPath());
    return () => chat.stop();
  }, [userId]);

  if (!current) return <AuthScreen api={chat.api} onLogin={(s) => session.set(s)} />;
  return <ChatScreen chat={chat} />;
}

function ChatScreen({ chat }: { chat: Chat }) {
  useChat(chat);
  return (
    <div class={`app${chat.open ? ' has-open' : ''}`}>
      <Sidebar chat={chat} />
      <ConversationView chat={chat} />
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
