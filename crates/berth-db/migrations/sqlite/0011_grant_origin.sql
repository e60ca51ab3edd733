-- Where a repository permission came from, for the effective-permissions view: NULL for one set
-- by hand (API or UI), 'creator' for the admin grant a creator outside the namespace's admins
-- gets, 'default:<uuid>' for one an organization's default permission made at creation.
-- Setting a permission by hand clears it.
ALTER TABLE repo_account_perms ADD COLUMN origin TEXT;
ALTER TABLE repo_team_perms ADD COLUMN origin TEXT;
