/** The import rules of ../shared/ARCHITECTURE.md, enforced in `npm test`. */
const floor = '^src/(types|errors|clock|deadline)\\.ts$';
module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', from: {}, to: { circular: true } },
    {
      name: 'floor-imports-nothing',
      comment: 'types.ts, errors.ts and clock.ts import nothing from the project.',
      severity: 'error',
      from: { path: floor },
      to: { path: '^src/', pathNot: floor },
    },
    {
      name: 'leaves-stay-leaves',
      comment: 'crypto/ and cookie/ import only the floor and platform APIs, never a framework.',
      severity: 'error',
      from: { path: '^src/(crypto|cookie)/' },
      to: {
        pathNot: ['^src/(types|errors|clock)\\.ts$', '^src/(crypto|cookie)/', '^node:', 'node_modules/@types/node'],
        dependencyTypesNot: ['core'],
      },
    },
    {
      name: 'store-contract-imports-floor',
      severity: 'error',
      from: { path: '^src/store\\.ts$' },
      to: { path: '^src/', pathNot: floor },
    },
    {
      name: 'core-is-framework-free',
      comment: 'core/ never imports a concrete store, a driver, a framework or node:http.',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: ['^src/(stores|adapters|auth|compat|testing|cli)/', 'node_modules', '^(node:)?https?$'] },
    },
    {
      name: 'stores-stay-apart',
      comment: 'stores import store.ts and the floor (SQL stores also stores/sql), never core/ and never each other.',
      severity: 'error',
      from: { path: '^src/stores/([^/]+)/' },
      to: { path: '^src/(core|adapters|auth|compat|crypto|cookie)/|^src/stores/(?!$1/|sql/)' },
    },
    {
      name: 'outer-ring-uses-public-api',
      comment: 'adapters, auth and compat reach the engine through src/index.ts only.',
      severity: 'error',
      from: { path: '^src/(adapters|auth|compat)/' },
      to: { path: '^src/core/' },
    },
    {
      name: 'runtime-never-imports-testing-or-cli',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(testing|cli)/|\\.test\\.ts$' },
      to: { path: '^src/(testing|cli)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.test\\.ts$' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
