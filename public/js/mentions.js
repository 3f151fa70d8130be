// `@name` mentions: which members a text mentions, whether it mentions a name, and the
// completion of a name being typed after `@`. Names may hold spaces, so a mention is
// `@` and a whole member name, not followed by a letter or digit.

/** Where `@name` occurs in `text` (case-insensitive, whole name): [{start, end}]. */
export function findName(text, name) {
  const out = [];
  if (!name) return out;
  const haystack = text.toLowerCase();
  const needle = `@${name.toLowerCase()}`;
  let from = 0;
  for (;;) {
    const at = haystack.indexOf(needle, from);
    if (at < 0) return out;
    const end = at + needle.length;
    if (end >= text.length || !/[\p{L}\p{N}_]/u.test(text[end])) out.push({ start: at, end });
    from = end;
  }
}

/** Whether `text` mentions `name`. */
export function mentionsName(text, name) {
  return findName(text, name).length > 0;
}

/** The client ids of the members (`[{name, client}]`) that `text` mentions. */
export function findMentions(text, members) {
  const clients = members.filter((m) => m.client && mentionsName(text, m.name)).map((m) => m.client);
  return [...new Set(clients)];
}

/** The `@…` being typed just before `caret` in `value`, {start, query}, or null. */
export function mentionQuery(value, caret) {
  const before = value.slice(0, caret);
  const at = before.lastIndexOf('@');
  if (at < 0 || (at > 0 && !/\s/.test(before[at - 1]))) return null;
  const query = before.slice(at + 1);
  // Names may have spaces, but a completion is only offered for the first word or two.
  if (query.length > 40 || /\s\S*\s/.test(query)) return null;
  return { start: at, query };
}

/** The names of `names` that start with `query` (case-insensitive), at most `limit`. */
export function matchingNames(names, query, limit = 6) {
  const q = query.toLowerCase();
  return [...new Set(names)].filter((n) => n && n.toLowerCase().startsWith(q)).slice(0, limit);
}
