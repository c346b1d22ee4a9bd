// weftctl: the command line. `main` is exported for tests and for embedding.
export { main, usage } from './main.ts';
