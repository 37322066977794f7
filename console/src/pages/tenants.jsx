import { api } from '../api.js';
import { ErrorBox, ResourceList, useLoad } from '../components.jsx';

const ROLES = ['tenant-admin', 'tenant-developer', 'tenant-user'];

export function Tenants() {
  return (
    <ResourceList
      testid="tenants"
      title="Tenants"
      coll="/tenants"
      rowLink={(t) => `/tenants/${t.id}`}
      columns={[
        { key: 'name', label: 'Name' },
        { key: 'id', label: 'Id' },
        { key: 'createdAt', label: 'Created', time: true },
      ]}
      fields={[{ name: 'name', label: 'Name', required: true }]}
      editFields={[{ name: 'name', label: 'Name', required: true }]}
      canWrite
      createLabel="New tenant"
    />
  );
}

export function TenantDetail({ tenant, me }) {
  const [st] = useLoad(() => api('GET', `/tenants/${tenant}`), [tenant]);
  const admin = me.role === 'platform-admin' || me.role === 'tenant-admin';
  return (
    <div>
      <h1>Tenant {st.data ? st.data.name : tenant}</h1>
      <ErrorBox error={st.error} />
      <ResourceList
        testid="users"
        title="Users"
        coll={`/tenants/${tenant}/users`}
        columns={[
          { key: 'name', label: 'Name' },
          { key: 'role', label: 'Role' },
          { key: 'createdAt', label: 'Created', time: true },
        ]}
        fields={[
          { name: 'name', label: 'Name', required: true },
          { name: 'role', label: 'Role', type: 'select', options: ROLES },
          { name: 'password', label: 'Password', type: 'password', required: true },
        ]}
        canWrite={admin}
        createLabel="New user"
      />
      <Applications tenant={tenant} me={me} />
    </div>
  );
}

export function Applications({ tenant, me }) {
  return (
    <ResourceList
      testid="applications"
      title="Applications"
      coll={`/tenants/${tenant}/applications`}
      rowLink={me.role === 'platform-admin' ? null : (a) => `/apps/${a.id}/schemas`}
      columns={[
        { key: 'name', label: 'Name' },
        { key: 'id', label: 'Id' },
        { key: 'applicationToken', label: 'Application token' },
        { key: 'appRev', label: 'Revision' },
      ]}
      fields={[
        { name: 'name', label: 'Name', required: true },
        { name: 'credentialsMode', label: 'Credentials mode', type: 'select', options: ['trustful', 'provisioned'] },
      ]}
      canWrite={me.role === 'tenant-admin'}
      createLabel="New application"
    />
  );
}

export function ApplicationsPage({ me }) {
  if (me.role === 'platform-admin') return <Tenants />;
  return <Applications tenant={me.tenantId} me={me} />;
}
