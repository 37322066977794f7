// The console's building blocks: form fields that show the REST API's
// error at the field it names, tables, and a list-plus-create page for a
// REST collection.
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api, ApiError, fmtTime } from './api.js';
import { Link } from './router.jsx';

export function useLoad(fn, deps) {
  const [state, setState] = useState({ loading: true, data: null, error: null });
  const reload = useCallback(() => {
    setState((s) => ({ ...s, loading: true }));
    return fn().then(
      (data) => setState({ loading: false, data, error: null }),
      (error) => setState({ loading: false, data: null, error }),
    );
  }, deps);
  useEffect(() => {
    reload();
  }, [reload]);
  return [state, reload];
}

export function ErrorBox({ error }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error.message}
      {error.path ? ` (${error.path})` : ''}
    </p>
  );
}

// The top-level member a REST error path names: "$.schema.fields[0]" -> "schema".
export function fieldOfPath(path) {
  const m = /^\$\.([A-Za-z0-9_]+)/.exec(path || '');
  return m ? m[1] : null;
}

export function Field({ f, value, onInput, error }) {
  const id = `f-${f.name}`;
  const errId = `${id}-error`;
  const common = {
    id,
    name: f.name,
    'aria-invalid': error ? 'true' : undefined,
    'aria-describedby': error ? errId : undefined,
  };
  let input;
  if (f.type === 'select') {
    input = (
      <select {...common} value={value} onChange={(e) => onInput(e.target.value)}>
        {(f.options || []).map((o) => (
          <option value={o.value ?? o}>{o.label ?? o}</option>
        ))}
      </select>
    );
  } else if (f.type === 'checkbox') {
    input = (
      <input {...common} type="checkbox" checked={!!value} onChange={(e) => onInput(e.target.checked)} />
    );
  } else if (f.type === 'json') {
    input = (
      <textarea
        {...common}
        class="json"
        rows={f.rows || 8}
        spellcheck={false}
        value={value}
        onInput={(e) => onInput(e.target.value)}
      />
    );
  } else {
    input = (
      <input
        {...common}
        type={f.type || 'text'}
        autocomplete={f.type === 'password' ? 'new-password' : 'off'}
        value={value}
        onInput={(e) => onInput(e.target.value)}
      />
    );
  }
  return (
    <div class={'field' + (error ? ' has-error' : '')}>
      <label for={id}>
        {f.label || f.name}
        {f.required ? ' *' : ''}
      </label>
      {input}
      {f.help && <small>{f.help}</small>}
      {error && (
        <p class="field-error" id={errId} role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

function initial(fields, init) {
  const v = {};
  for (const f of fields) {
    if (init && init[f.name] !== undefined && init[f.name] !== null)
      v[f.name] = f.type === 'json' ? JSON.stringify(init[f.name], null, 2) : init[f.name];
    else v[f.name] = f.default ?? (f.type === 'checkbox' ? false : f.type === 'select' ? (f.options?.[0]?.value ?? f.options?.[0] ?? '') : '');
  }
  return v;
}

// Builds the JSON body from the form; JSON syntax errors stay at their field.
function toBody(fields, values) {
  const body = {}, errors = {};
  for (const f of fields) {
    let v = values[f.name];
    // A select whose options arrived after the form opened shows its first
    // option: submit what is shown.
    if (f.type === 'select' && (v === '' || v === undefined) && f.options?.length)
      v = f.options[0].value ?? f.options[0];
    if (f.type === 'json') {
      if (String(v).trim() === '') {
        if (f.required) errors[f.name] = 'required';
        continue;
      }
      try {
        body[f.name] = JSON.parse(v);
      } catch (e) {
        errors[f.name] = `not JSON: ${e.message}`;
      }
    } else if (f.type === 'number') {
      if (v === '' || v === null) {
        if (f.required) errors[f.name] = 'required';
        continue;
      }
      body[f.name] = Number(v);
    } else if (f.type === 'ids') {
      body[f.name] = String(v).split(/[ ,]+/).filter(Boolean).map(Number);
    } else if (f.type === 'checkbox') {
      body[f.name] = !!v;
    } else {
      if (v === '') {
        if (f.required) errors[f.name] = 'required';
        continue;
      }
      body[f.name] = f.type === 'select' && f.numeric ? Number(v) : v;
    }
  }
  return { body, errors };
}

export function Form({ fields, init, submitLabel, onSubmit, onCancel, id }) {
  const [values, setValues] = useState(() => initial(fields, init));
  const [errors, setErrors] = useState({});
  const [formError, setFormError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    const { body, errors: local } = toBody(fields, values);
    setFormError(null);
    setErrors(local);
    if (Object.keys(local).length) return;
    setBusy(true);
    try {
      await onSubmit(body);
    } catch (err) {
      const name = fieldOfPath(err.path);
      if (err instanceof ApiError && name && fields.some((f) => f.name === name)) {
        setErrors({ [name]: `${err.message} (${err.path})` });
      } else {
        setFormError(err);
      }
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="form" onSubmit={submit} id={id} noValidate>
      {fields.map((f) => (
        <Field
          f={f}
          value={values[f.name]}
          error={errors[f.name]}
          onInput={(v) => setValues((s) => ({ ...s, [f.name]: v }))}
        />
      ))}
      <ErrorBox error={formError} />
      <div class="actions">
        <button type="submit" class="primary" disabled={busy}>
          {submitLabel || 'Create'}
        </button>
        {onCancel && (
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}

export function cell(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function Table({ columns, rows, rowKey = 'id', label }) {
  if (!rows || rows.length === 0) return <p class="empty">Nothing here yet.</p>;
  return (
    <div class="table-wrap">
      <table aria-label={label}>
        <thead>
          <tr>
            {columns.map((c) => (
              <th scope="col">{c.label}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r[rowKey]} data-row={r[rowKey]}>
              {columns.map((c) => (
                <td>{c.render ? c.render(r) : c.time ? fmtTime(r[c.key]) : cell(r[c.key])}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

// List a REST collection, create in it, delete from it, and optionally
// edit an item. coll: "/applications/3/schemas".
export function ResourceList({ title, coll, columns, fields, canWrite, createLabel, editFields, rowLink, extra, deletable = true, testid }) {
  const [st, reload] = useLoad(() => api('GET', coll + '?limit=1000'), [coll]);
  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState(null);
  const [actionError, setActionError] = useState(null);
  const fieldList = typeof fields === 'function' ? fields() : fields;
  const cols = [...columns];
  if (rowLink) cols[0] = { ...cols[0], render: (r) => <Link to={rowLink(r)}>{cell(r[columns[0].key])}</Link> };
  if (canWrite && (deletable || editFields || extra))
    cols.push({
      label: 'Actions',
      render: (r) => (
        <span class="row-actions">
          {extra && extra(r, reload)}
          {editFields && (
            <button type="button" onClick={() => setEditing(r)}>
              Edit
            </button>
          )}
          {deletable && (
            <button
              type="button"
              class="danger"
              aria-label={`Delete ${r.name || r.id}`}
              onClick={async () => {
                if (!confirm(`Delete ${r.name || r.id}?`)) return;
                setActionError(null);
                try {
                  await api('DELETE', `${coll}/${r.id}`, undefined, { ifMatch: r.version });
                  reload();
                } catch (e) {
                  setActionError(e);
                }
              }}
            >
              Delete
            </button>
          )}
        </span>
      ),
    });
  else if (extra) cols.push({ label: 'Actions', render: (r) => extra(r, reload) });
  return (
    <section class="resource" data-testid={testid}>
      <div class="section-head">
        <h2>{title}</h2>
        {canWrite && fieldList && !creating && (
          <button type="button" class="primary" onClick={() => setCreating(true)}>
            {createLabel || 'New'}
          </button>
        )}
      </div>
      {creating && (
        <Form
          id="create-form"
          fields={fieldList}
          submitLabel="Create"
          onCancel={() => setCreating(false)}
          onSubmit={async (body) => {
            await api('POST', coll, body);
            setCreating(false);
            reload();
          }}
        />
      )}
      {editing && (
        <div class="edit">
          <h3>Edit {editing.name || `#${editing.id}`}</h3>
          <Form
            id="edit-form"
            fields={editFields}
            init={editing}
            submitLabel="Save"
            onCancel={() => setEditing(null)}
            onSubmit={async (body) => {
              await api('PUT', `${coll}/${editing.id}`, body, { ifMatch: editing.version });
              setEditing(null);
              reload();
            }}
          />
        </div>
      )}
      <ErrorBox error={actionError} />
      <ErrorBox error={st.error} />
      {st.data && <Table label={title} columns={cols} rows={st.data.items} />}
    </section>
  );
}
