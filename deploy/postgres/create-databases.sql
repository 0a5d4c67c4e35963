-- A database per service: nobody reads another service's data.
CREATE DATABASE auth;
CREATE DATABASE users;
CREATE DATABASE tenants;
CREATE DATABASE agents;
CREATE DATABASE chat;
CREATE DATABASE knowledge;
CREATE DATABASE billing;
