// Sessions online and log records per second over time, sampled every 5 s
// while the page is open (the server keeps no history: the chart starts
// when the page does).
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { api, isMissingRoute } from '../api.js';
import { ErrorBox, Table } from '../components.jsx';

const PERIOD_MS = 5000;
const MAX_SAMPLES = 720; // one hour

async function applications(me) {
  if (me.role !== 'platform-admin') {
    const r = await api('GET', `/tenants/${me.tenantId}/applications?limit=1000`);
    return r.items;
  }
  const tenants = await api('GET', '/tenants?limit=1000');
  const out = [];
  for (const t of tenants.items.slice(0, 50)) {
    const r = await api('GET', `/tenants/${t.id}/applications?limit=1000`);
    out.push(...r.items);
  }
  return out;
}

async function sample(me, apps) {
  const per = [];
  let statsMissing = false;
  for (const a of apps.slice(0, 100)) {
    try {
      per.push({ ...(await api('GET', `/applications/${a.id}/stats`)), name: a.name });
    } catch (e) {
      if (isMissingRoute(e)) {
        statsMissing = true;
        break;
      }
      throw e;
    }
  }
  let sessions = per.reduce((n, s) => n + (s.sessionsOnline || 0), 0);
  if (statsMissing && me.role === 'platform-admin') {
    const nodes = await api('GET', '/nodes');
    sessions = nodes.items.reduce((n, x) => n + (x.sessions || 0), 0);
  }
  const rps = per.reduce((n, s) => n + (s.recordsPerSecond || 0), 0);
  return { at: Date.now() / 1000, sessions, rps, per, statsMissing };
}

export function Overview({ me }) {
  const el = useRef(null);
  const plot = useRef(null);
  const data = useRef([[], [], []]);
  const [last, setLast] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let apps = null, stop = false;
    const width = () => Math.max(280, (el.current?.clientWidth || 800) - 8);
    plot.current = new uPlot(
      {
        title: 'Sessions online and log records per second',
        width: width(),
        height: 280,
        // Counts from 0.
        scales: {
          x: { time: true },
          n: { range: (u, min, max) => [0, Math.max(10, max * 1.2)] },
          r: { range: (u, min, max) => [0, Math.max(10, max * 1.2)] },
        },
        series: [
          {},
          { label: 'sessions', stroke: '#2563eb', width: 2, scale: 'n' },
          { label: 'records/s', stroke: '#16a34a', width: 2, scale: 'r' },
        ],
        axes: [{}, { scale: 'n', label: 'sessions' }, { scale: 'r', side: 1, label: 'records/s', grid: { show: false } }],
      },
      data.current,
      el.current,
    );
    const onResize = () => plot.current.setSize({ width: width(), height: 280 });
    addEventListener('resize', onResize);
    const tick = async () => {
      try {
        if (!apps) apps = await applications(me);
        const s = await sample(me, apps);
        if (stop) return;
        const d = data.current;
        d[0].push(s.at);
        d[1].push(s.sessions);
        d[2].push(s.rps);
        if (d[0].length > MAX_SAMPLES) d.forEach((a) => a.shift());
        plot.current.setData(d);
        // At least the last five minutes: a lone first sample must not
        // stretch the time axis over years.
        const max = d[0][d[0].length - 1];
        plot.current.setScale('x', { min: Math.min(d[0][0], max - 300), max });
        setLast(s);
        setError(null);
      } catch (e) {
        if (!stop) setError(e);
      }
    };
    tick();
    const t = setInterval(tick, PERIOD_MS);
    return () => {
      stop = true;
      clearInterval(t);
      removeEventListener('resize', onResize);
      plot.current.destroy();
    };
  }, [me]);
  return (
    <section data-testid="overview">
      <h1>Overview</h1>
      <ErrorBox error={error} />
      {last && (
        <p class="summary" id="overview-summary">
          <strong>{last.sessions}</strong> sessions online, <strong>{last.rps.toFixed(1)}</strong> records/s
          {last.statsMissing && ' (this server has no per-application stats API)'}
        </p>
      )}
      <div class="chart" ref={el} role="img" aria-label="Chart of sessions online and records per second over time" />
      {last && last.per.length > 0 && (
        <Table
          label="applications"
          rowKey="applicationId"
          columns={[
            { key: 'name', label: 'Application' },
            { key: 'sessionsOnline', label: 'Sessions' },
            { key: 'endpoints', label: 'Endpoints' },
            { key: 'registrationsInWindow', label: 'New registrations' },
            { label: 'Records/s', render: (s) => (s.recordsPerSecond || 0).toFixed(1) },
          ]}
          rows={last.per}
        />
      )}
    </section>
  );
}
