import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { ErrorBox, Table, useLoad } from '../components.jsx';

export function Nodes() {
  const [st, reload] = useLoad(() => api('GET', '/nodes'), []);
  const [err, setErr] = useState(null);
  useEffect(() => {
    const t = setInterval(reload, 5000);
    return () => clearInterval(t);
  }, [reload]);
  const act = async (method, id) => {
    setErr(null);
    try {
      await api(method, `/nodes/${encodeURIComponent(id)}/drain`, method === 'PUT' ? { timeoutSeconds: 30 } : undefined);
      reload();
    } catch (e) {
      setErr(e);
    }
  };
  const columns = [
    { key: 'id', label: 'Node' },
    { key: 'host', label: 'Host' },
    { label: 'Services', render: (n) => (n.services || []).join(', ') },
    { key: 'sessions', label: 'Sessions' },
    { label: 'Load', render: (n) => (typeof n.load === 'number' ? n.load.toFixed(2) : '') },
    { label: 'State', render: (n) => (n.draining ? 'draining' : n.drainRequested ? 'drain requested' : 'serving') },
    { key: 'version', label: 'Version' },
    {
      label: 'Actions',
      render: (n) =>
        (n.services || []).includes('operations') &&
        (n.drainRequested || n.draining ? (
          <button type="button" onClick={() => act('DELETE', n.id)}>
            Cancel drain
          </button>
        ) : (
          <button type="button" class="danger" onClick={() => confirm(`Drain ${n.id}?`) && act('PUT', n.id)}>
            Drain
          </button>
        )),
    },
  ];
  return (
    <section data-testid="nodes">
      <h1>Cluster nodes</h1>
      <ErrorBox error={err || st.error} />
      {st.data && <Table label="nodes" columns={columns} rows={st.data.items} />}
    </section>
  );
}
