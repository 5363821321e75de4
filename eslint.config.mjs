// ESLint (flat config) for the web page's plain JavaScript, with no plugin to install:
//   npx --yes eslint@9 charrnn_magic/web        (.ci/run runs it)
// The files are browser scripts, not modules, with no build step. The rules are core rules
// (most of eslint:recommended, named here so that the config imports nothing), plus one that
// keeps data out of markup.
export default [
  {
    files: ["charrnn_magic/web/*.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "script",
      globals: {
        window: "readonly", globalThis: "readonly", document: "readonly", atob: "readonly",
        performance: "readonly", setTimeout: "readonly", Event: "readonly",
      },
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      "no-undef": "error", "no-unused-vars": ["error", { args: "after-used" }],
      "no-redeclare": "error", "no-dupe-keys": "error", "no-dupe-args": "error",
      "no-duplicate-case": "error", "no-unreachable": "error", "no-const-assign": "error",
      "no-self-assign": "error", "no-self-compare": "error", "no-cond-assign": "error",
      "no-fallthrough": "error", "no-shadow-restricted-names": "error", "use-isnan": "error",
      "valid-typeof": "error", "no-unsafe-negation": "error", "no-loss-of-precision": "error",
      "no-sparse-arrays": "error", "no-empty": "error", "no-func-assign": "error",
      "no-inner-declarations": "error", "no-use-before-define": ["error", { functions: false,
                                                                              variables: false }],
      eqeqeq: "error", "no-var": "error", "prefer-const": "error", strict: ["error", "global"],
      "no-eval": "error", "no-implied-eval": "error", "no-new-func": "error",
      "no-restricted-properties": ["error",
        { property: "innerHTML", message: "show data with textContent only" },
        { property: "outerHTML", message: "show data with textContent only" },
        { property: "insertAdjacentHTML", message: "show data with textContent only" }],
      "no-restricted-syntax": ["error", { selector: "CallExpression[callee.property.name='write']"
                                                   + "[callee.object.name='document']",
                                          message: "no document.write" }],
    },
  },
];
