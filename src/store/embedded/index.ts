export { createEmbeddedStore, EmbeddedStore, type EmbeddedStoreOptions } from './lmdb.js';
