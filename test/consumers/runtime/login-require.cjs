const express = require('express');
const { createBff } = require('express-ort-bff');
const { CookieJar, scriptedLogin, startLocalAuth0 } = require('express-ort-bff/local-auth0');

import('./login.mjs')
  .then(({ logIn }) => logIn({ via: 'require', express, createBff, startLocalAuth0, scriptedLogin, CookieJar }))
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
