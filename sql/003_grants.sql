-- Least privilege. Nobody but the owner may create objects in public.
revoke create on schema public from public;
do $$
begin
    execute format('revoke all on database %I from public', current_database());
    execute format(
        'grant connect on database %I to carehouse_loader, carehouse_transformer, carehouse_bi',
        current_database()
    );
    -- dlt and dbt stage merges through temporary tables.
    execute format(
        'grant temporary on database %I to carehouse_loader, carehouse_transformer',
        current_database()
    );
end
$$;

-- quarantine: the loader and the transformer each create and write their own tables.
grant usage, create on schema quarantine to carehouse_loader, carehouse_transformer;

-- The transformer reads everything the loader lands, now and in the future.
grant usage on schema raw_admissions, raw_patients, raw_labs, raw_vitals, quarantine
to carehouse_transformer;
grant select on all tables in schema raw_admissions, raw_patients, raw_labs, raw_vitals, quarantine
to carehouse_transformer;
alter default privileges for role carehouse_loader
in schema raw_admissions, raw_patients, raw_labs, raw_vitals, quarantine
grant select on tables to carehouse_transformer;

-- BI reads gold and nothing else, including gold tables created later.
grant usage on schema gold to carehouse_bi;
grant select on all tables in schema gold to carehouse_bi;
alter default privileges for role carehouse_transformer in schema gold
grant select on tables to carehouse_bi;
