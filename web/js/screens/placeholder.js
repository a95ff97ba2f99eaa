// placeholder.js: the screen of a route whose module is not built yet.
import {h} from '../dom.js';

export async function render(root, params, query, route) {
  root.append(h('h1', null, route ? route.title : 'Not built yet'),
              h('p', {class: 'placeholder'}, 'This screen is not built yet.'));
}
