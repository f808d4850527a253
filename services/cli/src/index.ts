export { CommandError, EXIT } from './exitCodes.ts';
export { buildProgram, run } from './program.ts';
