import js from '@eslint/js';
import globals from 'globals';

export default [
  { ignores: ['node_modules/**', 'web-ext-artifacts/**', 'vendor/**'] },
  js.configs.recommended,
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
      globals: { ...globals.browser, ...globals.webextensions, ...globals.serviceworker },
    },
    rules: {
      'no-unused-vars': 'error',
      eqeqeq: 'error',
      'prefer-const': 'error',
    },
  },
  {
    files: ['content/loader.js', 'content/shadow_css.js', 'content/shadow_hook.js'],
    languageOptions: { sourceType: 'script' },
  },
  {
    files: ['test/**/*.js', 'test/**/*.mjs', 'tools/**/*.mjs'],
    languageOptions: { globals: { ...globals.node } },
  },
];
