// htm bound to Preact's h (htm's own preact entry): tagged templates instead of JSX, so the
// bundle needs no JSX settings.
export { html } from 'htm/preact';
