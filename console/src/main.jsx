import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, setCsrf, setUnauthorizedHandler } from './api.js';
import { Link, match, navigate, usePath } from './router.jsx';
import { Login } from './pages/login.jsx';
import { Overview } from './pages/overview.jsx';
import { Nodes } from './pages/nodes.jsx';
import { ApplicationsPage, TenantDetail, Tenants } from './pages/tenants.jsx';
import { AppDetail } from './pages/app.jsx';
import './style.css';

function Page({ path, me }) {
  let m;
  if (path === '/' || path === '') return <Overview me={me} />;
  if (path === '/nodes') return me.role === 'platform-admin' ? <Nodes /> : <p>Platform administrators only.</p>;
  if (path === '/tenants') return <Tenants />;
  if ((m = match('/tenants/:tenant', path))) return <TenantDetail tenant={m.tenant} me={me} />;
  if (path === '/applications') return <ApplicationsPage me={me} />;
  if ((m = match('/apps/:app/:tab', path))) return <AppDetail app={m.app} tab={m.tab} me={me} />;
  if ((m = match('/apps/:app/:tab/:rest', path))) return <AppDetail app={m.app} tab={m.tab} rest={m.rest} me={me} />;
  return <p>No such page.</p>;
}

function App() {
  const [me, setMe] = useState(undefined); // undefined: asking; null: logged out
  const path = usePath();
  useEffect(() => {
    setUnauthorizedHandler(() => {
      setCsrf(null);
      setMe(null);
    });
    api('GET', '/session', undefined, { quiet401: true }).then(
      (s) => {
        setCsrf(s.csrfToken);
        setMe(s.user);
      },
      () => setMe(null),
    );
  }, []);
  if (me === undefined) return <p class="loading">Loading…</p>;
  if (me === null) return <Login onLogin={setMe} />;
  const logout = async () => {
    try {
      await api('DELETE', '/session');
    } finally {
      setCsrf(null);
      setMe(null);
      navigate('/');
    }
  };
  const admin = me.role === 'platform-admin';
  return (
    <div class="shell">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header>
        <span class="brand">Kaa</span>
        <nav aria-label="Main">
          <Link to="/">Overview</Link>
          {admin && <Link to="/tenants">Tenants</Link>}
          {!admin && <Link to="/applications">Applications</Link>}
          {!admin && <Link to={`/tenants/${me.tenantId}`}>Users</Link>}
          {admin && <Link to="/nodes">Nodes</Link>}
        </nav>
        <span class="who" id="who">
          {me.name} ({me.role})
        </span>
        <button type="button" id="logout" onClick={logout}>
          Log out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        <Page path={path} me={me} />
      </main>
    </div>
  );
}

render(<App />, document.getElementById('app'));
