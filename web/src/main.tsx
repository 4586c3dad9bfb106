import { render } from 'preact';
import { App } from './components/App';
import { Chat } from './chat';
import { SessionStore } from './session';
import { applyTheme } from './theme';
import './styles.css';

applyTheme();
const session = new SessionStore();
const chat = new Chat(session);
const returning = session.get();
if (returning) chat.restoreList(returning.user.id);
render(<App session={session} chat={chat} />, document.getElementById('app')!);
