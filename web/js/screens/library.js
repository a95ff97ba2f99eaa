// Not built yet: the placeholder until this screen lands.
export {render} from './placeholder.js';
