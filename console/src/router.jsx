// History routing under /console/ (kaa-node answers index.html for any
// path without an extension there).
import { useEffect, useState } from 'preact/hooks';

const BASE = '/console';

export function currentPath() {
  const p = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : '/';
  return p || '/';
}

export function navigate(to) {
  history.pushState(null, '', BASE + to);
  dispatchEvent(new Event('kaa-navigate'));
}

export function usePath() {
  const [path, setPath] = useState(currentPath());
  useEffect(() => {
    const on = () => setPath(currentPath());
    addEventListener('popstate', on);
    addEventListener('kaa-navigate', on);
    return () => {
      removeEventListener('popstate', on);
      removeEventListener('kaa-navigate', on);
    };
  }, []);
  return path;
}

// Matches "/apps/:app/:tab" against a path: params or null.
export function match(pattern, path) {
  const p = pattern.split('/'), s = path.split('/');
  if (p.length !== s.length) return null;
  const out = {};
  for (let i = 0; i < p.length; i++) {
    if (p[i].startsWith(':')) out[p[i].slice(1)] = decodeURIComponent(s[i]);
    else if (p[i] !== s[i]) return null;
  }
  return out;
}

export function Link({ to, children, ...rest }) {
  return (
    <a
      href={BASE + to}
      onClick={(e) => {
        if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
        e.preventDefault();
        navigate(to);
      }}
      {...rest}
    >
      {children}
    </a>
  );
}
