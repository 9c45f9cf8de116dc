// Create an account (#/signup): the sign-in page's form, for a new account.
// A new account is signed in at once.

import { form } from './signin.js';

export async function render(root, ctx) {
  return form(root, ctx, true);
}
