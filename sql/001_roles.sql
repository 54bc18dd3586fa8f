-- Application roles. Idempotent: created only when missing. Passwords are set
-- by carehouse.core.bootstrap from the environment or the generated secrets file,
-- never written here. No application role is superuser or may create roles.
do $$
begin
    if not exists (select from pg_roles where rolname = 'carehouse_loader') then
        create role carehouse_loader login nosuperuser nocreatedb nocreaterole noinherit;
    end if;
    if not exists (select from pg_roles where rolname = 'carehouse_transformer') then
        create role carehouse_transformer login nosuperuser nocreatedb nocreaterole noinherit;
    end if;
    if not exists (select from pg_roles where rolname = 'carehouse_bi') then
        create role carehouse_bi login nosuperuser nocreatedb nocreaterole noinherit;
    end if;
end
$$;

-- BI sessions are read-only at the session level too.
alter role carehouse_bi set default_transaction_read_only = on;
