/** The operations page's entry: styles (uPlot's included, so everything is served from this origin) and the app. */
import './styles.css';
import { App } from './app.ts';

// The skip link targets <main> by script: its plain href would change the hash, which is the router's.
document.querySelector('a.skip-link')?.addEventListener('click', (event) => {
  event.preventDefault();
  document.getElementById('main')?.focus();
});

new App().start();
