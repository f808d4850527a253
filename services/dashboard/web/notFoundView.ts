import { h } from './dom.ts';
import type { View } from './view.ts';

/** Any hash the router does not know. */
export class NotFoundView implements View {
  readonly element: HTMLElement;
  readonly title = 'Not found';

  constructor(path: string) {
    this.element = h(
      'div',
      { class: 'view not-found' },
      h('h1', { tabindex: -1 }, 'Page not found'),
      h('p', null, `There is no page “${path}”. `, h('a', { href: '#/' }, 'Go to the overview')),
    );
  }

  async refresh(): Promise<void> {}

  wants(): boolean {
    return false;
  }

  setQuery(): void {}

  dispose(): void {}
}
