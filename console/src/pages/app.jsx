// One application: its schemas, groups, configurations, topics,
// notifications, log appenders, SDK profiles and endpoints, one tab each.
import { api } from '../api.js';
import { ErrorBox, ResourceList, useLoad } from '../components.jsx';
import { Link } from '../router.jsx';
import { Endpoints } from './endpoints.jsx';

const KINDS = ['configuration', 'profile-client', 'profile-server', 'notification', 'log'];

const TABS = [
  ['schemas', 'Schemas'],
  ['groups', 'Groups'],
  ['configurations', 'Configurations'],
  ['topics', 'Topics'],
  ['notifications', 'Notifications'],
  ['log-appenders', 'Log appenders'],
  ['sdk-profiles', 'SDK profiles'],
  ['endpoints', 'Endpoints'],
];

function canDevelop(me) {
  return me.role === 'tenant-developer';
}

function Schemas({ app, me }) {
  return (
    <ResourceList
      testid="schemas"
      title="Schemas"
      coll={`/applications/${app}/schemas`}
      columns={[
        { key: 'kind', label: 'Kind' },
        { key: 'schemaVersion', label: 'Version' },
        { key: 'name', label: 'Name' },
        { key: 'createdAt', label: 'Created', time: true },
      ]}
      fields={[
        { name: 'kind', label: 'Kind', type: 'select', options: KINDS, required: true },
        { name: 'name', label: 'Name' },
        {
          name: 'schema',
          label: 'Avro schema (JSON)',
          type: 'json',
          required: true,
          rows: 12,
          help: 'A new schema of a kind becomes its next version.',
        },
      ]}
      canWrite={canDevelop(me)}
      createLabel="New schema"
    />
  );
}

function Groups({ app, me }) {
  const fields = [
    { name: 'name', label: 'Name', required: true },
    { name: 'weight', label: 'Weight', type: 'number', help: 'Higher weights win when configurations are merged.' },
    { name: 'filter', label: 'Filter (JSON, docs/filters.md; empty: every endpoint)', type: 'json', rows: 5 },
  ];
  return (
    <ResourceList
      testid="groups"
      title="Endpoint groups"
      coll={`/applications/${app}/groups`}
      columns={[
        { key: 'name', label: 'Name' },
        { key: 'id', label: 'Id' },
        { key: 'weight', label: 'Weight' },
        { key: 'filter', label: 'Filter' },
      ]}
      fields={fields}
      editFields={fields}
      canWrite={canDevelop(me)}
      createLabel="New group"
    />
  );
}

function Configurations({ app, me }) {
  const [groups] = useLoad(() => api('GET', `/applications/${app}/groups?limit=1000`), [app]);
  const options = (groups.data?.items || []).map((g) => ({ value: String(g.id), label: `${g.name} (#${g.id})` }));
  return (
    <ResourceList
      testid="configurations"
      title="Configurations"
      coll={`/applications/${app}/configurations`}
      columns={[
        { key: 'id', label: 'Id' },
        { key: 'groupId', label: 'Group' },
        { key: 'schemaVersion', label: 'Schema version' },
        { key: 'body', label: 'Body' },
        { key: 'updatedAt', label: 'Updated', time: true },
      ]}
      fields={() => [
        { name: 'groupId', label: 'Group', type: 'select', numeric: true, options, required: true },
        { name: 'schemaVersion', label: 'Configuration schema version', type: 'number', required: true, default: 1 },
        { name: 'body', label: 'Configuration (JSON)', type: 'json', required: true, rows: 12 },
      ]}
      editFields={[{ name: 'body', label: 'Configuration (JSON)', type: 'json', required: true, rows: 12 }]}
      canWrite={canDevelop(me)}
      createLabel="New configuration"
    />
  );
}

function Topics({ app, me }) {
  const fields = [
    { name: 'name', label: 'Name', required: true },
    { name: 'mandatory', label: 'Mandatory', type: 'checkbox' },
    { name: 'groupIds', label: 'Group ids (comma separated)', type: 'ids' },
  ];
  return (
    <ResourceList
      testid="topics"
      title="Topics"
      coll={`/applications/${app}/topics`}
      columns={[
        { key: 'name', label: 'Name' },
        { key: 'id', label: 'Id' },
        { key: 'mandatory', label: 'Mandatory' },
        { key: 'groupIds', label: 'Groups' },
        { key: 'seq', label: 'Last seq' },
      ]}
      fields={fields}
      canWrite={canDevelop(me)}
      createLabel="New topic"
    />
  );
}

function Notifications({ app, me }) {
  const [topics] = useLoad(() => api('GET', `/applications/${app}/topics?limit=1000`), [app]);
  const options = (topics.data?.items || []).map((t) => ({ value: String(t.id), label: t.name }));
  return (
    <ResourceList
      testid="notifications"
      title="Notifications"
      coll={`/applications/${app}/notifications`}
      columns={[
        { key: 'id', label: 'Id' },
        { key: 'topicId', label: 'Topic' },
        { key: 'seq', label: 'Seq' },
        { key: 'endpointKeyHash', label: 'Endpoint (unicast)' },
        { key: 'body', label: 'Body' },
        { key: 'expiresAt', label: 'Expires', time: true },
      ]}
      fields={() => [
        { name: 'topicId', label: 'Topic', type: 'select', numeric: true, options, required: true },
        { name: 'endpointKeyHash', label: 'Endpoint key hash (empty: every subscriber)' },
        { name: 'body', label: 'Notification (JSON)', type: 'json', required: true, rows: 6 },
        { name: 'ttlSeconds', label: 'Time to live (seconds)', type: 'number', default: 3600 },
      ]}
      canWrite={canDevelop(me)}
      createLabel="Send notification"
    />
  );
}

function Appenders({ app, me }) {
  const fields = [
    { name: 'name', label: 'Name', required: true },
    {
      name: 'settings',
      label: 'Settings (JSON)',
      type: 'json',
      required: true,
      default: '{"type": "endpoint-store"}',
      help: 'type: file, endpoint-store, ... (docs/endpoint-store.md)',
    },
  ];
  return (
    <ResourceList
      testid="log-appenders"
      title="Log appenders"
      coll={`/applications/${app}/log-appenders`}
      columns={[
        { key: 'name', label: 'Name' },
        { key: 'settings', label: 'Settings' },
      ]}
      fields={fields}
      editFields={fields}
      canWrite={me.role === 'tenant-admin' || canDevelop(me)}
      createLabel="New appender"
    />
  );
}

function SdkProfiles({ app, me }) {
  const fields = [
    { name: 'name', label: 'Name', required: true },
    {
      name: 'schemaVersions',
      label: 'Schema versions (JSON)',
      type: 'json',
      required: true,
      default: '{"configuration": 1, "profile-client": 1, "log": 1}',
    },
    { name: 'bootstrap', label: 'Bootstrap URLs (JSON array)', type: 'json', rows: 3 },
  ];
  return (
    <ResourceList
      testid="sdk-profiles"
      title="SDK profiles"
      coll={`/applications/${app}/sdk-profiles`}
      columns={[
        { key: 'name', label: 'Name' },
        { key: 'schemaVersions', label: 'Schema versions' },
        { key: 'bootstrap', label: 'Bootstrap' },
      ]}
      fields={fields}
      editFields={fields}
      canWrite={canDevelop(me)}
      extra={(p) => (
        <a class="button" href={`/api/v1/applications/${app}/sdk-profiles/${p.id}/sdk`} download>
          Download SDK
        </a>
      )}
      createLabel="New SDK profile"
    />
  );
}

const PANES = {
  schemas: Schemas,
  groups: Groups,
  configurations: Configurations,
  topics: Topics,
  notifications: Notifications,
  'log-appenders': Appenders,
  'sdk-profiles': SdkProfiles,
  endpoints: Endpoints,
};

export function AppDetail({ app, tab, me, rest }) {
  const [st] = useLoad(() => api('GET', `/tenants/${me.tenantId}/applications/${app}`), [app, me.tenantId]);
  const Pane = PANES[tab] || Schemas;
  return (
    <div>
      <h1>
        Application {st.data ? st.data.name : `#${app}`}
        {st.data && <small class="token"> token {st.data.applicationToken}</small>}
      </h1>
      <ErrorBox error={st.error} />
      <nav class="tabs" aria-label="Application">
        {TABS.map(([id, label]) => (
          <Link to={`/apps/${app}/${id}`} aria-current={id === tab ? 'page' : undefined}>
            {label}
          </Link>
        ))}
      </nav>
      <Pane app={app} me={me} rest={rest} />
    </div>
  );
}
