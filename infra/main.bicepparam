using 'main.bicep'

param appName = 'durableagents'
param postgresHighAvailability = false
param postgresBackupRetentionDays = 7
param postgresSkuName = 'Standard_B2s'
param postgresSkuTier = 'Burstable'
param alwaysReadyInstances = 1
param hostingMode = readEnvironmentVariable('DURABLEAGENTS_HOSTING_MODE', 'customHandler')
