// The fleet API (GET /applications/{app}/endpoints...). Older kaa-node
// builds do not have it: their 404 "no such route" is shown as such.
import { useEffect, useState } from 'preact/hooks';
import { api, fmtTime, isMissingRoute } from '../api.js';
import { ErrorBox, Form, Table, cell, useLoad } from '../components.jsx';
import { Link } from '../router.jsx';

function Missing() {
  return (
    <p class="notice" role="status" id="endpoints-missing">
      This server has no endpoint API (GET /api/v1/applications/&#123;app&#125;/endpoints answered 404): it runs a
      kaa-node build from before the fleet API.
    </p>
  );
}

export function Endpoints({ app, rest }) {
  return rest ? <EndpointDetail app={app} kh={rest} /> : <EndpointList app={app} />;
}

function EndpointList({ app }) {
  const [online, setOnline] = useState('');
  const [st, reload] = useLoad(
    () => api('GET', `/applications/${app}/endpoints?limit=200${online ? `&online=${online}` : ''}`),
    [app, online],
  );
  useEffect(() => {
    const t = setInterval(reload, 5000);
    return () => clearInterval(t);
  }, [reload]);
  if (st.error && isMissingRoute(st.error)) return <Missing />;
  const columns = [
    { key: 'keyHash', label: 'Key hash', render: (e) => <Link to={`/apps/${app}/endpoints/${encodeURIComponent(e.keyHash)}`}>{e.keyHash}</Link> },
    { label: 'Status', render: (e) => <span class={e.online ? 'online' : 'offline'}>{e.online ? 'online' : 'offline'}</span> },
    { key: 'nodeId', label: 'Node' },
    { key: 'groupIds', label: 'Groups' },
    { key: 'ownerId', label: 'Owner' },
    { key: 'lastSeen', label: 'Last seen', time: true },
    { key: 'registeredAt', label: 'Registered', time: true },
  ];
  return (
    <section data-testid="endpoints">
      <div class="section-head">
        <h2>Endpoints</h2>
        <label>
          Show{' '}
          <select value={online} onChange={(e) => setOnline(e.target.value)}>
            <option value="">all</option>
            <option value="true">online</option>
            <option value="false">offline</option>
          </select>
        </label>
      </div>
      <ErrorBox error={st.error} />
      {st.data && <Table label="endpoints" rowKey="keyHash" columns={columns} rows={st.data.items} />}
    </section>
  );
}

function EndpointDetail({ app, kh }) {
  const base = `/applications/${app}/endpoints/${encodeURIComponent(kh)}`;
  const [ep, reloadEp] = useLoad(() => api('GET', base), [base]);
  const [cfg] = useLoad(() => api('GET', base + '/configuration'), [base]);
  const [sp, reloadSp] = useLoad(() => api('GET', base + '/server-profile'), [base]);
  const [logs] = useLoad(() => api('GET', base + '/logs?limit=50'), [base]);
  if (ep.error && isMissingRoute(ep.error)) return <Missing />;
  const e = ep.data;
  return (
    <section data-testid="endpoint">
      <h2>
        Endpoint <code>{kh}</code>
      </h2>
      <ErrorBox error={ep.error} />
      {e && (
        <dl class="props">
          <dt>Status</dt>
          <dd>{e.online ? `online on ${e.nodeId}` : 'offline'}</dd>
          <dt>Registered</dt>
          <dd>{fmtTime(e.registeredAt)}</dd>
          <dt>Last seen</dt>
          <dd>{fmtTime(e.lastSeen)}</dd>
          <dt>Groups</dt>
          <dd>{cell(e.groupIds)}</dd>
          <dt>Owner</dt>
          <dd>{cell(e.ownerId)}</dd>
          <dt>Client profile</dt>
          <dd>
            <pre>{JSON.stringify(e.clientProfile, null, 2)}</pre>
          </dd>
        </dl>
      )}
      <h3>Server profile</h3>
      <ErrorBox error={sp.error} />
      {sp.data && (
        <Form
          id="server-profile-form"
          key={sp.data.version}
          fields={[{ name: 'serverProfile', label: 'Server profile (JSON)', type: 'json', required: true, rows: 6 }]}
          init={sp.data}
          submitLabel="Save server profile"
          onSubmit={async (body) => {
            await api('PUT', base + '/server-profile', body, { ifMatch: (sp.data.version || 0) + 1 });
            reloadSp();
            reloadEp();
          }}
        />
      )}
      <h3>Effective configuration</h3>
      <ErrorBox error={cfg.error} />
      {cfg.data && (
        <div>
          <p>
            hash <code>{cfg.data.hash}</code>, groups {cell(cfg.data.groupIds)},{' '}
            {cfg.data.delivered ? 'delivered' : 'not yet delivered'}
          </p>
          <pre>{JSON.stringify(cfg.data.configuration, null, 2)}</pre>
        </div>
      )}
      <h3>Recent log records</h3>
      <ErrorBox error={logs.error} />
      {logs.data && (
        <Table
          label="log records"
          rowKey="_k"
          columns={[
            { key: 'receivedAt', label: 'Received', time: true },
            { label: 'Record', render: (r) => cell(r.record ?? r.data ?? r) },
          ]}
          rows={logs.data.items.map((r) => ({ ...r, _k: `${r.batchId}:${r.index}` }))}
        />
      )}
    </section>
  );
}
