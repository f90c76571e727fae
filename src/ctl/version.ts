/** flotctl's version; kept equal to package.json's. */
export const CTL_VERSION = '0.1.0';
