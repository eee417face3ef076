-- Who may do what: people's accounts with a role, floor displays that log in by a link, and
-- the sessions both hold. Only hashes of passwords, display links and session tokens are kept.
CREATE TABLE IF NOT EXISTS floorflow.users (
  username text PRIMARY KEY CHECK (username ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
  role text NOT NULL CHECK (role IN ('engineer', 'operator', 'viewer')),
  -- bcrypt: a slow hash, since people choose passwords that a fast hash would give away.
  password_hash text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  password_changed_at timestamptz NOT NULL DEFAULT now(),
  disabled_at timestamptz
);

-- A display link logs a kiosk in as a viewer of some pages. The link is a random token shown
-- once; SHA-256 is enough for 256 random bits and lets every request check it cheaply.
CREATE TABLE IF NOT EXISTS floorflow.displays (
  name text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
  token_hash text NOT NULL UNIQUE,
  -- Dashboard page paths without the leading slash ('machines', 'dispatch'); empty: every page.
  pages text[] NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  last_seen_at timestamptz
);

-- One row per login (a person's or a display's). The cookie holds the token; the row its hash.
-- Ending a session (logout, expiry, a disabled user, a revoked display) sets ended_at, so
-- every runtime on this database refuses it at its next check.
CREATE TABLE IF NOT EXISTS floorflow.sessions (
  token_hash text PRIMARY KEY,
  username text REFERENCES floorflow.users (username) ON DELETE CASCADE,
  display_name text REFERENCES floorflow.displays (name) ON DELETE CASCADE,
  address text,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  ended_at timestamptz,
  end_reason text,
  CHECK ((username IS NULL) <> (display_name IS NULL))
);
CREATE INDEX IF NOT EXISTS sessions_user_idx ON floorflow.sessions (username) WHERE ended_at IS NULL;
CREATE INDEX IF NOT EXISTS sessions_display_idx ON floorflow.sessions (display_name) WHERE ended_at IS NULL;

-- The engraving job's own status log names the person who decided (approve, reject, QA), as
-- the lifecycle audit rows do; before, it named only machines.
ALTER TABLE engraving.job_events ADD COLUMN IF NOT EXISTS actor text;
-- Who ordered an engraving job (the login or the API token's name).
ALTER TABLE engraving.engraving_jobs ADD COLUMN IF NOT EXISTS created_by text;
