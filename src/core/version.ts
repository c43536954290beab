// The tool's name and version, stamped into every report so a result can be traced to the code
// that made it. Kept in step with package.json by test/unit/version.test.ts.
export const TOOL_NAME = 'prunescope';
export const TOOL_VERSION = '0.1.0';
