-- One schema per layer. raw_* belong to the loader (dlt creates its tables
-- there); staging through gold belong to the transformer (dbt builds them);
-- quarantine is shared: the loader writes rejected records, dbt writes its
-- quarantine models.
create schema if not exists raw_admissions authorization carehouse_loader;
create schema if not exists raw_patients authorization carehouse_loader;
create schema if not exists raw_labs authorization carehouse_loader;
create schema if not exists raw_vitals authorization carehouse_loader;

create schema if not exists staging authorization carehouse_transformer;
create schema if not exists snapshots authorization carehouse_transformer;
create schema if not exists silver authorization carehouse_transformer;
create schema if not exists gold authorization carehouse_transformer;
create schema if not exists gold_next authorization carehouse_transformer;
create schema if not exists audit authorization carehouse_transformer;

create schema if not exists quarantine;
