// vitest runs only the *.vitest.ts files: the harness under a fourth runner.
export default {
  test: {
    include: ["**/*.vitest.ts"],
    exclude: ["node_modules/**", ".tmp/**"],
  },
};
