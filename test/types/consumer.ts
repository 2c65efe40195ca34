// Type-level test of the published package: compiled against dist/ (self-reference by package
// name) after the build, exactly as an app sees it. Every @ts-expect-error must be needed.
import express from 'express';
import type { Session, SessionData } from 'sesh';
import { session } from 'sesh/express';

declare module 'sesh' {
  interface SessionData {
    views: number;
    user: { name: string };
  }
}

const app = express();
app.use(session({ secret: process.env.SESSION_SECRET as string }));
app.get('/', async (req, res) => {
  const views: number = (req.session.views ?? 0) + 1;
  req.session.views = views;
  const name: string | undefined = req.session.user?.name;
  // @ts-expect-error keys that SessionData does not declare are type errors
  req.session.nope = 1;
  // @ts-expect-error values must have the declared type
  req.session.views = 'many';
  // @ts-expect-error the id is read-only
  req.session.id = 'forged';
  await req.session.regenerate();
  await req.session.save();
  res.send(`${name}:${req.session.id}`);
});

const s: Session<SessionData> | undefined = undefined;

export { s };
