/** The test apps' `BILLHOOK_ADMIN_KEY`, stored in the run's template database (global-setup.ts). */
export const ADMIN_KEY = 'bh_test_admin_key_0123456789abcdef';
