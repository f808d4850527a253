/** Small DOM helpers: elements are built with text nodes only (never innerHTML), so no data can inject markup. */

export type Child = Node | string | number | null | undefined | false | readonly Child[];
type AttrValue = string | number | boolean | null | undefined;
export type Attrs = Record<string, AttrValue | EventListener>;

function append(parent: Node, child: Child): void {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child as readonly Child[]) append(parent, c);
  } else if (child instanceof Node) {
    parent.appendChild(child);
  } else {
    parent.appendChild(document.createTextNode(String(child)));
  }
}

function setAttrs(element: Element, attrs: Attrs | null | undefined): void {
  if (!attrs) return;
  for (const [name, value] of Object.entries(attrs)) {
    if (typeof value === 'function') element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, '');
    else if (value !== false && value !== null && value !== undefined)
      element.setAttribute(name, String(value));
  }
}

/** An HTML element: `h('a', { href: '#/' }, 'Overview')`. Attributes named on* take listeners. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  setAttrs(element, attrs);
  append(element, children);
  return element;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG_NS, tag);
  setAttrs(element, attrs);
  append(element, children);
  return element;
}

/** Replaces an element's content. */
export function fill(element: Element, ...children: Child[]): void {
  element.replaceChildren();
  append(element, children);
}

/** Replaces the content only when it differs, so focus inside an unchanged part survives a refresh. */
export function fillIfChanged(element: Element, ...children: Child[]): void {
  const next = document.createDocumentFragment();
  append(next, children);
  const same =
    next.childNodes.length === element.childNodes.length &&
    Array.from(next.childNodes).every((node, i) => element.childNodes[i]?.isEqualNode(node) === true);
  if (!same) element.replaceChildren(next);
}

function syncAttributes(target: Element, source: Element): void {
  for (const { name } of Array.from(target.attributes)) {
    if (!source.hasAttribute(name)) target.removeAttribute(name);
  }
  for (const { name, value } of Array.from(source.attributes)) {
    if (target.getAttribute(name) !== value) target.setAttribute(name, value);
  }
}

/**
 * Puts `rows` into `body` in that order, keeping every existing row with
 * the same key and replacing only its cells that changed. Live updates
 * arrive every second or so: rebuilding the table would drop the focus
 * of a keyboard user and any text selection.
 */
export function reconcileRows(
  body: HTMLTableSectionElement,
  rows: readonly HTMLTableRowElement[],
  key: (row: HTMLTableRowElement) => string | undefined,
): void {
  const existing = new Map<string, HTMLTableRowElement>();
  for (const row of Array.from(body.rows)) {
    const k = key(row);
    if (k !== undefined) existing.set(k, row);
  }
  const result = rows.map((row) => {
    const k = key(row);
    const previous = k === undefined ? undefined : existing.get(k);
    if (previous === undefined) return row;
    existing.delete(k as string);
    syncAttributes(previous, row);
    const cells = Array.from(row.cells);
    if (cells.length !== previous.cells.length) {
      previous.replaceChildren(...cells);
    } else {
      cells.forEach((cell, i) => {
        const old = previous.cells[i];
        if (old !== undefined && !old.isEqualNode(cell)) previous.replaceChild(cell, old);
      });
    }
    return previous;
  });
  let cursor = body.firstElementChild;
  for (const row of result) {
    if (row === cursor) cursor = cursor.nextElementSibling;
    else body.insertBefore(row, cursor);
  }
  // Whatever is left after the last placed row is no longer wanted.
  while (cursor) {
    const next = cursor.nextElementSibling;
    cursor.remove();
    cursor = next;
  }
}

/** A `<select>`'s options, keeping the selection (added as an option when the list lacks it). */
export function setOptions(
  select: HTMLSelectElement,
  options: readonly { value: string; label: string }[],
  selected: string,
): void {
  const list = options.some((o) => o.value === selected)
    ? options
    : [...options, { value: selected, label: selected }];
  const same =
    select.options.length === list.length &&
    list.every((o, i) => select.options[i]?.value === o.value && select.options[i]?.text === o.label);
  if (!same) select.replaceChildren(...list.map((o) => h('option', { value: o.value }, o.label)));
  if (select.value !== selected) select.value = selected;
}
