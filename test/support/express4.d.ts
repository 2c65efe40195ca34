// express4 is an npm alias of express@4, used to run the tests on both majors. Its API is a subset
// of what @types/express (v5) declares for what the tests use, so it borrows those types.
declare module 'express4' {
  import express = require('express');
  export = express;
}
