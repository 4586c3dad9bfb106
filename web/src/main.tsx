import { render } from 'preact';
import { App } from './components/App';
import { Chat } from './chat';
import { SessionStore } from './session';
import { applyTheme } from './theme';
import './styles.css';

applyTheme();
const session = new SessionStore();
const chat = new Chat(session);
render(<App session={session} chat={chat} />, document.getElementById('app')!);
