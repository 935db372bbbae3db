import express from 'express';
import { createBff } from 'express-ort-bff';
import { CookieJar, scriptedLogin, startLocalAuth0 } from 'express-ort-bff/local-auth0';
import { logIn } from './login.mjs';

await logIn({ via: 'import', express, createBff, startLocalAuth0, scriptedLogin, CookieJar });
