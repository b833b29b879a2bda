@description('Cache name.')
param name string

@description('Azure region.')
param location string

@description('Subnet for private endpoints.')
param privateEndpointSubnetId string

@description('Private DNS zone id for Azure Managed Redis.')
param dnsZoneId string

@description('Principal (object) id of the app identity, granted data access through Entra.')
param appPrincipalId string

@description('SKU, e.g. Balanced_B0.')
param skuName string = 'Balanced_B0'

// Azure Managed Redis: Entra authentication only (access keys disabled), private endpoint only.
resource cache 'Microsoft.Cache/redisEnterprise@2025-07-01' = {
  name: name
  location: location
  sku: { name: skuName }
  properties: {
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Disabled'
  }
}

resource database 'Microsoft.Cache/redisEnterprise/databases@2025-07-01' = {
  parent: cache
  name: 'default'
  properties: {
    clientProtocol: 'Encrypted'
    port: 10000
    clusteringPolicy: 'EnterpriseCluster'
    evictionPolicy: 'VolatileLRU'
    accessKeysAuthentication: 'Disabled'
  }
}

resource appAccess 'Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments@2025-07-01' = {
  parent: database
  name: 'app'
  properties: {
    accessPolicyName: 'default'
    user: { objectId: appPrincipalId }
  }
}

module endpoint 'privateEndpoint.bicep' = {
  name: '${name}-pe-redis'
  params: {
    name: '${name}-pe-redis'
    location: location
    subnetId: privateEndpointSubnetId
    targetId: cache.id
    groupId: 'redisEnterprise'
    dnsZoneId: dnsZoneId
  }
}

output hostName string = cache.properties.hostName
output name string = cache.name
