import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Plain JavaScript (no type information): the typed rules this config turns on are turned off again. */
const UNTYPED_RULES = {
  ...tseslint.configs.disableTypeChecked.rules,
  '@typescript-eslint/no-floating-promises': 'off',
  '@typescript-eslint/no-misused-promises': 'off',
  '@typescript-eslint/await-thenable': 'off',
  '@typescript-eslint/switch-exhaustiveness-check': 'off',
  '@typescript-eslint/no-unused-expressions': 'off',
};

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // node:test's describe/it return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', name: ['describe', 'it', 'test', 'suite'], package: 'node:test' }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // The bridge an agent starts in a traced process's network namespace: plain CommonJS, run as it is.
    files: ['src/probes/node/target/**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      sourceType: 'commonjs',
      globals: { process: 'readonly', require: 'readonly' },
    },
    rules: { ...UNTYPED_RULES, '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Programs the tests trace: plain JavaScript, run as they are.
    files: ['src/testing/node-targets/**/*.{cjs,mjs}', 'src/testing/node-targets/packaged/tinyrouter/**/*.js', 'examples/**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly', console: 'readonly', require: 'readonly', module: 'writable', exports: 'writable', setTimeout: 'readonly', Proxy: 'readonly', URL: 'readonly', setInterval: 'readonly', performance: 'readonly', fetch: 'readonly' },
    },
    rules: { ...UNTYPED_RULES, '@typescript-eslint/no-require-imports': 'off' },
  },
);
